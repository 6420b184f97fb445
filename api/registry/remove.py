"""Take persons and households out of the registry (`rabta registry remove`), all or nothing.

The registry is the read side: an import adds and updates rows, and this is how rows the national
registry dropped leave Rabta. A removed person's payments and enrollments go with them, and a
removed household takes its persons. Rabta's own records stay: grievances (with their CNIC and
events, still in the queue), the audit log and the inbound and outbound logs are kept as they
are; only a conversation's standing verification for a removed CNIC is ended
(`contacts.verified_cnic`), since there is no registered mobile left to verify against. Each
person removed leaves an entry in the audit log (`registry_remove`: who ran it, and why), in the
same transaction, so "who took this person out?" has an answer in the console.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sqlalchemy import bindparam, delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import InstrumentedAttribute

from api.agent.schemas import AuditAction, RecordType
from api.db import Database
from api.identity import Cnic, InvalidCnic
from api.registry.importer import RegistryImportError, quoted
from api.registry.models import (
    AuditEntry,
    Contact,
    Enrollment,
    Grievance,
    Household,
    Payment,
    Person,
)

#: Keys per statement: SQLite caps bound parameters at 999 on old builds.
BATCH = 500
#: Grievance statuses still in someone's queue.
_OPEN_GRIEVANCES = ("open", "in_progress", "escalated")


@dataclass
class RemovalPlan:
    """What to remove: CNICs and household ids, each once, in the order first given, and a
    file of more (read chunk by chunk as they are removed, see `read_removal_chunks`)."""

    cnics: list[str] = field(default_factory=list)
    households: list[str] = field(default_factory=list)
    file: Path | None = None

    def add_cnic(self, cnic: str) -> None:
        if cnic not in self._seen_cnics:
            self._seen_cnics.add(cnic)
            self.cnics.append(cnic)

    def add_household(self, household_id: str) -> None:
        if household_id not in self._seen_households:
            self._seen_households.add(household_id)
            self.households.append(household_id)

    def __post_init__(self) -> None:
        self._seen_cnics: set[str] = set()
        self._seen_households: set[str] = set()
        cnics, households = self.cnics, self.households
        self.cnics, self.households = [], []
        for cnic in cnics:
            self.add_cnic(cnic)
        for household_id in households:
            self.add_household(household_id)

    @property
    def total(self) -> int:
        """The CNICs and household ids given, those of the file not counted."""
        return len(self.cnics) + len(self.households)


@dataclass(frozen=True)
class RemovalAudit:
    """Who removes, and why: what each removed person's audit entry says."""

    #: The audit log's actor, e.g. `cli:ops`: the account that ran the command.
    actor: str
    #: Why, as the operator put it, or where the list came from (`file leavers.csv`).
    reason: str


@dataclass
class RemovalReport:
    """Rows removed per table, what was asked for but not there, and what Rabta kept."""

    persons: int = 0
    households: int = 0
    enrollments: int = 0
    payments: int = 0
    #: CNICs given that are not (or no longer) in `persons`.
    cnics_not_found: int = 0
    #: Household ids given that are not (or no longer) in `households`.
    households_not_found: int = 0
    #: Contacts whose verification for a removed CNIC was ended.
    contacts_unverified: int = 0
    #: Grievances of removed persons still open, in progress or escalated: kept in the queue.
    open_grievances: int = 0
    dry_run: bool = False
    seconds: float = 0.0

    def removed(self) -> dict[str, int]:
        return {
            "households": self.households,
            "persons": self.persons,
            "enrollments": self.enrollments,
            "payments": self.payments,
        }


def parse_cnic(value: str) -> str:
    """The 13 digits of a CNIC written any way people write one; ValueError if it is none."""
    try:
        return Cnic.parse(value).digits
    except InvalidCnic:
        raise ValueError(f"{quoted(value)} is not a CNIC (13 digits)") from None


#: Lines of a removal file read per chunk: a 35-million-line file never sits in memory.
CHUNK_LINES = 20_000


@dataclass(frozen=True)
class RemovalChunk:
    """Keys read from a removal file, in file order: CNICs (`cnic`) or household ids
    (`household_id`), a key the file repeats as often as it is there."""

    column: Literal["cnic", "household_id"]
    keys: list[str]


def read_removal_chunks(path: Path) -> Iterator[RemovalChunk]:
    """The CNICs or household ids listed in `path`, CHUNK_LINES at a time.

    The file is either one CNIC per line (blank lines and lines starting with `#` skipped) or a
    CSV file with a header naming a `cnic` or a `household_id` column (a `persons.csv` or
    `households.csv` of leavers, in the extract's format). Raises RegistryImportError naming
    the file and line of anything that is not a CNIC or household id, when reading gets there
    (the chunks before it have been handed out).
    """
    name = str(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            yield from _chunks(name, csv.reader(handle))
    except FileNotFoundError:
        raise RegistryImportError(name, None, None, "no such file") from None
    except IsADirectoryError:
        raise RegistryImportError(name, None, None, "is a folder, not a file") from None
    except UnicodeDecodeError:
        raise RegistryImportError(name, None, None, "not UTF-8 text") from None
    except csv.Error as exc:
        raise RegistryImportError(name, None, None, f"not valid CSV ({exc})") from None


def _chunks(name: str, reader: Iterator[list[str]]) -> Iterator[RemovalChunk]:
    """The work of `read_removal_chunks` on the rows of an open file."""
    first = next(reader, None)
    if first is None:
        return
    header = [h.strip().lower() for h in first]
    column: Literal["cnic", "household_id"] | None = None
    if "cnic" in header:
        column = "cnic"
    elif "household_id" in header:
        column = "household_id"
    rows = reader if column else itertools.chain([first], reader)
    index = header.index(column) if column else 0
    keys: list[str] = []
    for number, row in enumerate(rows, start=2 if column else 1):
        key = _csv_key(name, number, row, index, column) if column else _line_key(name, number, row)
        if key is None:
            continue
        keys.append(key)
        if len(keys) >= CHUNK_LINES:
            yield RemovalChunk(column or "cnic", keys)
            keys = []
    if keys:
        yield RemovalChunk(column or "cnic", keys)


def _line_key(name: str, number: int, row: list[str]) -> str | None:
    """The CNIC on a line of a plain list; None for a blank line or a comment."""
    value = ",".join(row).strip()
    if not value or value.startswith("#"):
        return None
    try:
        return parse_cnic(value)
    except ValueError as exc:
        raise RegistryImportError(name, number, None, str(exc)) from None


def _csv_key(
    name: str, number: int, row: list[str], index: int, column: Literal["cnic", "household_id"]
) -> str | None:
    """The CNIC or household id in a CSV row's `column`; None for an all-empty row."""
    if not any(cell.strip() for cell in row):
        return None
    if index >= len(row):
        raise RegistryImportError(name, number, column, "is missing")
    value = row[index].strip()
    if column == "cnic":
        try:
            return parse_cnic(value)
        except ValueError as exc:
            raise RegistryImportError(name, number, column, str(exc)) from None
    if not value or any(c.isspace() for c in value):
        raise RegistryImportError(name, number, column, f"{quoted(value)} is not a household id")
    return value


Progress = Callable[[int], None]


async def remove_from_registry(
    db: Database,
    plan: RemovalPlan,
    *,
    audit: RemovalAudit,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> RemovalReport:
    """Remove the plan's persons and households in one transaction (rolled back if `dry_run`),
    with an audit entry for each person removed.

    The plan's households go first, then its file, chunk by chunk, then its CNICs; a key given
    twice is dealt with once. `progress(n)` is called as n more CNICs or household ids given
    have been dealt with. Removing what is not there is counted, not an error, so a removal
    run twice removes once. A bad line in the file raises RegistryImportError and rolls back
    what the chunks before it removed.
    """
    started = time.perf_counter()
    report = RemovalReport(dry_run=dry_run)
    advance = progress or (lambda _n: None)
    async with db.engine.connect() as conn:
        transaction = await conn.begin()
        try:
            given = await _Given.create(conn)
            for batch in _batches(plan.households):
                await _remove_households(
                    conn, await given.fresh("household_id", batch), report, audit
                )
                advance(len(batch))
            for chunk in read_removal_chunks(plan.file) if plan.file is not None else ():
                for batch in _batches(chunk.keys):
                    fresh = await given.fresh(chunk.column, batch)
                    if chunk.column == "household_id":
                        await _remove_households(conn, fresh, report, audit)
                    else:
                        await _remove_cnics(conn, fresh, report, audit)
                    advance(len(batch))
            for batch in _batches(plan.cnics):
                await _remove_cnics(conn, await given.fresh("cnic", batch), report, audit)
                advance(len(batch))
            await given.drop()
        except BaseException:
            await transaction.rollback()
            raise
        if dry_run:
            await transaction.rollback()
        else:
            await transaction.commit()
    report.seconds = time.perf_counter() - started
    return report


class _Given:
    """The CNICs and household ids a removal has dealt with, in a temporary table of its
    transaction: a key a file repeats chunks apart, or an argument the file lists too, is
    removed once and not counted as missing the second time, without every key of a
    35-million-line file held in memory."""

    _TABLE = "removal_given"

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._postgres = conn.dialect.name == "postgresql"
        # One statement on PostgreSQL, the conflict found by the key's index: a SELECT of the
        # keys already there was planned once, generically, while the table was empty, and then
        # read the whole table for every batch (60,000 CNICs took 33 s instead of half a second).
        self._add_new = text(
            f"INSERT INTO {self._TABLE} (kind, given_key) "
            "SELECT :kind, unnest(CAST(:keys AS text[])) ON CONFLICT DO NOTHING "
            "RETURNING given_key"
        )
        self._seen = text(
            f"SELECT given_key FROM {self._TABLE} "  # noqa: S608
            "WHERE kind = :kind AND given_key IN :keys"
        ).bindparams(bindparam("keys", expanding=True))
        self._add = text(f"INSERT INTO {self._TABLE} (kind, given_key) VALUES (:kind, :key)")  # noqa: S608

    @classmethod
    async def create(cls, conn: AsyncConnection) -> _Given:
        columns = "(kind text NOT NULL, given_key text NOT NULL, PRIMARY KEY (kind, given_key))"
        if conn.dialect.name == "postgresql":
            await conn.exec_driver_sql(f"CREATE TEMP TABLE {cls._TABLE} {columns} ON COMMIT DROP")
        else:
            # Left by a removal that failed or was a dry run: Python's sqlite3 begins its
            # transaction at the first write, so the table's creation is not rolled back.
            await conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{cls._TABLE}")
            await conn.exec_driver_sql(f"CREATE TEMP TABLE {cls._TABLE} {columns}")
        return cls(conn)

    async def fresh(self, kind: str, keys: list[str]) -> list[str]:
        """`keys` not dealt with before, each once, in order; noted as dealt with."""
        unique = list(dict.fromkeys(keys))
        if self._postgres:
            added = await self._conn.execute(self._add_new, {"kind": kind, "keys": unique})
            new = set(added.scalars())
            return [key for key in unique if key in new]
        seen = set((await self._conn.execute(self._seen, {"kind": kind, "keys": unique})).scalars())
        fresh = [key for key in unique if key not in seen]
        if fresh:
            await self._conn.execute(self._add, [{"kind": kind, "key": key} for key in fresh])
        return fresh

    async def drop(self) -> None:
        if self._conn.dialect.name != "postgresql":
            await self._conn.exec_driver_sql(f"DROP TABLE {self._TABLE}")


def _batches(keys: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(keys), BATCH):
        yield list(keys[start : start + BATCH])


async def _existing(
    conn: AsyncConnection, column: InstrumentedAttribute[str], keys: list[str]
) -> set[str]:
    result = await conn.execute(select(column).where(column.in_(keys)))
    return set(result.scalars())


async def _remove_cnics(
    conn: AsyncConnection, cnics: list[str], report: RemovalReport, audit: RemovalAudit
) -> None:
    """CNICs given: those in the registry are removed, the others counted."""
    if not cnics:
        return
    found = await _existing(conn, Person.cnic, cnics)
    report.cnics_not_found += len(cnics) - len(found)
    await _remove_persons(conn, [c for c in cnics if c in found], report, audit)


async def _remove_households(
    conn: AsyncConnection, household_ids: list[str], report: RemovalReport, audit: RemovalAudit
) -> None:
    if not household_ids:
        return
    found = await _existing(conn, Household.household_id, household_ids)
    report.households_not_found += len(household_ids) - len(found)
    members = list(
        (
            await conn.execute(select(Person.cnic).where(Person.household_id.in_(household_ids)))
        ).scalars()
    )
    for batch in _batches(members):
        await _remove_persons(conn, batch, report, audit)
    result = await conn.execute(delete(Household).where(Household.household_id.in_(household_ids)))
    report.households += result.rowcount


async def _remove_persons(
    conn: AsyncConnection, cnics: list[str], report: RemovalReport, audit: RemovalAudit
) -> None:
    """Persons in the registry: their payments, enrollments and rows, each with its audit
    entry; Rabta's verification for them ends."""
    if not cnics:
        return
    payments = await conn.execute(delete(Payment).where(Payment.cnic.in_(cnics)))
    report.payments += payments.rowcount
    enrollments = await conn.execute(delete(Enrollment).where(Enrollment.cnic.in_(cnics)))
    report.enrollments += enrollments.rowcount
    persons = await conn.execute(delete(Person).where(Person.cnic.in_(cnics)))
    report.persons += persons.rowcount
    now = dt.datetime.now(dt.UTC)
    await conn.execute(
        insert(AuditEntry),
        [
            {
                "at": now,
                "actor": audit.actor[:64],
                "action": AuditAction.REGISTRY_REMOVE.value,
                "record_type": RecordType.PERSON.value,
                "record_id": cnic,
                "reason": audit.reason,
                "client_ip": None,
            }
            for cnic in cnics
        ],
    )
    contacts = await conn.execute(
        update(Contact)
        .where(Contact.verified_cnic.in_(cnics))
        .values(verified_cnic=None, verified_until=None)
    )
    report.contacts_unverified += contacts.rowcount
    report.open_grievances += (
        await conn.execute(
            select(func.count())
            .select_from(Grievance)
            .where(Grievance.cnic.in_(cnics), Grievance.status.in_(_OPEN_GRIEVANCES))
        )
    ).scalar_one()
