"""`rabta registry remove`: persons and households leave the registry; Rabta's records stay."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from api.db import Database
from api.registry import remove
from api.registry.cli import registry_app
from api.registry.importer import RegistryImportError
from api.registry.models import (
    AuditEntry,
    Contact,
    Enrollment,
    Grievance,
    GrievanceEvent,
    Household,
    Payment,
    Person,
)
from api.registry.remove import (
    RemovalAudit,
    RemovalChunk,
    RemovalPlan,
    read_removal_chunks,
    remove_from_registry,
)
from api.registry.repository import get_person_and_household
from tests.conftest import ELIGIBLE, ELIGIBLE_PHONE, ELIGIBLE_WIFE, NOT_ELIGIBLE, UNDER_REVIEW

AUDIT = RemovalAudit(actor="cli:ops", reason="NSER update 2026-11")

#: Not in the test registry.
UNKNOWN = "6110100000017"


async def _count(db: Database, model: type, *where: object) -> int:
    async with db.engine.connect() as conn:
        statement = select(func.count()).select_from(model)
        if where:
            statement = statement.where(*where)
        return (await conn.execute(statement)).scalar_one()


async def _rabta_records_for(db: Database, cnic: str) -> None:
    """A grievance with an event, an audit entry and a contact verified for `cnic`."""
    now = dt.datetime.now(dt.UTC)
    async with db.transaction() as session:
        contact = Contact(
            channel="sms",
            address=ELIGIBLE_PHONE,
            phone=ELIGIBLE_PHONE,
            verified_cnic=cnic,
            verified_until=now + dt.timedelta(minutes=30),
        )
        session.add(contact)
        await session.flush()
        grievance = Grievance(
            ticket_id="G-7K3M9Q",
            cnic=cnic,
            category="payment_not_received",
            description="no money",
            status="open",
            channel="sms",
            contact_id=contact.id,
            due_at=now + dt.timedelta(days=7),
        )
        session.add(grievance)
        await session.flush()
        session.add(GrievanceEvent(grievance_id=grievance.id, actor="citizen", action="created"))
        session.add(
            AuditEntry(
                actor="amina", action="view", record_type="person", record_id=cnic, reason=None
            )
        )


async def test_removing_a_person_takes_their_rows_and_keeps_rabtas_records(
    registry: Database,
) -> None:
    await _rabta_records_for(registry, ELIGIBLE_WIFE)

    report = await remove_from_registry(registry, RemovalPlan(cnics=[ELIGIBLE_WIFE]), audit=AUDIT)

    assert (report.persons, report.enrollments, report.payments, report.households) == (1, 2, 2, 0)
    assert report.cnics_not_found == 0
    assert report.contacts_unverified == 1
    assert report.open_grievances == 1
    async with registry.transaction() as session:
        assert await get_person_and_household(session, cnic=ELIGIBLE_WIFE) is None
        # Her husband and the household stay.
        assert await get_person_and_household(session, cnic=ELIGIBLE) is not None
    assert await _count(registry, Payment, Payment.cnic == ELIGIBLE_WIFE) == 0
    assert await _count(registry, Enrollment, Enrollment.cnic == ELIGIBLE_WIFE) == 0
    assert await _count(registry, Enrollment, Enrollment.cnic == ELIGIBLE) == 1
    # Rabta's own records are kept as they were; only the verification ends.
    assert await _count(registry, Grievance, Grievance.cnic == ELIGIBLE_WIFE) == 1
    assert await _count(registry, GrievanceEvent) == 1
    # The agent's view stays, and the removal is in the log beside it.
    async with registry.engine.connect() as conn:
        entries = (
            await conn.execute(
                select(AuditEntry.actor, AuditEntry.action, AuditEntry.reason)
                .where(AuditEntry.record_id == ELIGIBLE_WIFE)
                .order_by(AuditEntry.id)
            )
        ).all()
    assert [tuple(e) for e in entries] == [
        ("amina", "view", None),
        ("cli:ops", "registry_remove", "NSER update 2026-11"),
    ]
    async with registry.engine.connect() as conn:
        contact = (await conn.execute(select(Contact.verified_cnic, Contact.verified_until))).one()
    assert tuple(contact) == (None, None)


async def test_only_grievances_still_in_the_queue_are_reported_as_open(
    registry: Database,
) -> None:
    """The report's "open grievance(s) would stay in the queue" counts what an agent still has
    to act on (open, in progress, escalated), not a complaint resolved or rejected long ago."""
    await _rabta_records_for(registry, ELIGIBLE_WIFE)  # one open grievance
    now = dt.datetime.now(dt.UTC)
    async with registry.transaction() as session:
        for n, status in enumerate(["resolved", "rejected", "escalated"]):
            session.add(
                Grievance(
                    ticket_id=f"G-00000{n}",
                    cnic=ELIGIBLE_WIFE,
                    category="other",
                    description="earlier",
                    status=status,
                    channel="sms",
                    due_at=now,
                )
            )

    report = await remove_from_registry(registry, RemovalPlan(cnics=[ELIGIBLE_WIFE]), audit=AUDIT)

    assert report.open_grievances == 2  # the open one and the escalated one


async def test_removing_a_household_takes_its_persons(registry: Database) -> None:
    report = await remove_from_registry(
        registry, RemovalPlan(households=["HH-PB-0001"]), audit=AUDIT
    )

    assert (report.households, report.persons, report.enrollments, report.payments) == (1, 2, 3, 2)
    assert await _count(registry, Household) == 2
    assert await _count(registry, Person) == 2
    assert await _count(registry, Payment) == 0
    assert await _count(registry, Enrollment) == 0


async def test_a_dry_run_counts_and_changes_nothing(registry: Database, dump) -> None:
    before = await dump(registry)

    report = await remove_from_registry(
        registry,
        RemovalPlan(cnics=[ELIGIBLE_WIFE, UNKNOWN], households=["HH-SD-0002"]),
        audit=AUDIT,
        dry_run=True,
    )

    assert (report.persons, report.households, report.payments) == (2, 1, 2)
    assert report.cnics_not_found == 1
    assert report.dry_run
    assert await dump(registry) == before
    assert await _count(registry, AuditEntry) == 0


async def test_removing_twice_removes_once(registry: Database) -> None:
    plan = RemovalPlan(cnics=[NOT_ELIGIBLE, NOT_ELIGIBLE], households=["HH-KP-0003"])
    first = await remove_from_registry(registry, plan, audit=AUDIT)
    second = await remove_from_registry(registry, plan, audit=AUDIT)

    assert (first.persons, first.households, first.cnics_not_found) == (2, 1, 0)
    assert (second.persons, second.households) == (0, 0)
    assert (second.cnics_not_found, second.households_not_found) == (1, 1)
    assert await _count(registry, Person) == 2
    # One audit entry per person removed, none for what was no longer there.
    assert await _count(registry, AuditEntry, AuditEntry.action == "registry_remove") == 2


def _read(path: Path) -> tuple[list[str], list[str]]:
    """The CNICs and household ids a removal file lists, read through."""
    cnics: list[str] = []
    households: list[str] = []
    for chunk in read_removal_chunks(path):
        (cnics if chunk.column == "cnic" else households).extend(chunk.keys)
    return cnics, households


def test_a_removal_file_is_read_in_chunks_not_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A national registry update can drop millions of people: the file was read whole into
    memory (35 million lines, some gigabytes of Python strings) before anything was removed.
    It is read CHUNK_LINES at a time: the first chunk comes before the reader has reached the
    end of the file, whose bad last line it has not yet seen."""
    monkeypatch.setattr(remove, "CHUNK_LINES", 2)
    path = tmp_path / "leavers.txt"
    path.write_text(
        f"{ELIGIBLE}\n# a comment\n{ELIGIBLE_WIFE}\n{UNDER_REVIEW}\nnot a cnic\n",
        encoding="utf-8",
    )
    chunks = read_removal_chunks(path)
    assert next(chunks) == RemovalChunk("cnic", [ELIGIBLE, ELIGIBLE_WIFE])
    with pytest.raises(RegistryImportError, match="line 5: 'not a cnic' is not a CNIC"):
        next(chunks)

    persons = tmp_path / "persons.csv"
    persons.write_text(
        f"household_id,cnic\nHH-PB-0001,{ELIGIBLE}\nHH-PB-0001,{ELIGIBLE_WIFE}\n"
        f"HH-SD-0002,{UNDER_REVIEW}\n",
        encoding="utf-8",
    )
    assert list(read_removal_chunks(persons)) == [
        RemovalChunk("cnic", [ELIGIBLE, ELIGIBLE_WIFE]),
        RemovalChunk("cnic", [UNDER_REVIEW]),
    ]


async def test_a_file_read_in_chunks_removes_each_once_all_or_nothing(
    registry: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dump
) -> None:
    """Chunk by chunk, a CNIC the file repeats chunks apart (or also given as an argument) is
    still removed once and not counted as missing; and a bad line after chunks were removed
    leaves the registry as it was."""
    monkeypatch.setattr(remove, "CHUNK_LINES", 2)
    before = await dump(registry)
    path = tmp_path / "leavers.txt"
    given = [ELIGIBLE_WIFE, UNKNOWN, NOT_ELIGIBLE, ELIGIBLE_WIFE, UNKNOWN, ELIGIBLE_WIFE]
    path.write_text("\n".join([*given, "12345"]) + "\n", encoding="utf-8")
    with pytest.raises(RegistryImportError, match="line 7: '12345' is not a CNIC"):
        await remove_from_registry(registry, RemovalPlan(file=path), audit=AUDIT)
    assert await dump(registry) == before
    assert await _count(registry, AuditEntry) == 0

    path.write_text("\n".join(given) + "\n", encoding="utf-8")
    calls: list[int] = []
    report = await remove_from_registry(
        registry, RemovalPlan(cnics=[NOT_ELIGIBLE], file=path), audit=AUDIT, progress=calls.append
    )
    assert (report.persons, report.cnics_not_found) == (2, 1)
    assert await _count(registry, AuditEntry, AuditEntry.action == "registry_remove") == 2
    assert await _count(registry, Person) == 2
    assert sum(calls) == 1 + len(given)


def test_a_file_of_cnics_written_as_people_write_them(tmp_path: Path) -> None:
    path = tmp_path / "leavers.txt"
    path.write_text(
        "\ufeff# leavers, November\r\n35202-1234567-1\r\n\r\n۳۵۲۰۲۱۲۳۴۵۶۷۲\r\n3520212345671\r\n",
        encoding="utf-8",
    )
    # A CNIC written twice is listed twice; removing it removes it once.
    assert _read(path) == ([ELIGIBLE, ELIGIBLE_WIFE, ELIGIBLE], [])


def test_a_csv_file_with_a_cnic_or_household_column(tmp_path: Path) -> None:
    persons = tmp_path / "persons.csv"
    persons.write_text(
        'household_id,cnic,full_name\nHH-PB-0001,35202-1234567-1,"Aslam, Muhammad"\n,,\n',
        encoding="utf-8",
    )
    households = tmp_path / "households.csv"
    households.write_text("household_id,status\nHH-KP-0003,active\n", encoding="utf-8")
    assert _read(persons) == ([ELIGIBLE], [])
    assert _read(households) == ([], ["HH-KP-0003"])


def test_a_bad_line_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "leavers.txt"
    path.write_text(f"{ELIGIBLE}\n{UNDER_REVIEW}\n12345\n", encoding="utf-8")
    with pytest.raises(RegistryImportError) as caught:
        _read(path)
    assert str(caught.value) == f"{path} line 3: '12345' is not a CNIC (13 digits)"


def test_a_bad_cnic_is_quoted_without_its_middle_digits(tmp_path: Path) -> None:
    path = tmp_path / "leavers.txt"
    path.write_text(f"{ELIGIBLE}\n85202-1234567-1\n", encoding="utf-8")
    with pytest.raises(RegistryImportError) as caught:
        _read(path)
    assert str(caught.value) == f"{path} line 2: '85202-*******-1' is not a CNIC (13 digits)"


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RegistryImportError, match="no such file"):
        _read(tmp_path / "nope.txt")


async def test_cli_removes_and_summarises_without_printing_cnics(
    registry: Database, tmp_path: Path
) -> None:
    path = tmp_path / "leavers.txt"
    path.write_text(f"{ELIGIBLE_WIFE}\n{UNKNOWN}\n", encoding="utf-8")
    runner = CliRunner()

    result = await asyncio.to_thread(
        runner.invoke, registry_app, ["remove", "--file", str(path), "--household", "HH-KP-0003"]
    )

    assert result.exit_code == 0, result.output
    assert "Removed" in result.output
    assert "1 CNIC(s) given were not in the registry" in result.output
    for cnic in (ELIGIBLE_WIFE, UNKNOWN, UNDER_REVIEW):
        assert cnic not in result.output
    assert await _count(registry, Person) == 2
    # Each removed person is in the audit log, with the file the list came from.
    async with registry.engine.connect() as conn:
        entries = (
            await conn.execute(
                select(AuditEntry.record_id, AuditEntry.actor, AuditEntry.reason).where(
                    AuditEntry.action == "registry_remove"
                )
            )
        ).all()
    assert sorted(e.record_id for e in entries) == sorted([ELIGIBLE_WIFE, UNDER_REVIEW])
    assert {e.reason for e in entries} == {"rabta registry remove --file leavers.txt"}
    assert all(e.actor.startswith("cli") for e in entries)

    why = await asyncio.to_thread(
        runner.invoke, registry_app, ["remove", ELIGIBLE, "--reason", "died 2026-10-02"]
    )
    assert why.exit_code == 0, why.output
    assert await _count(registry, AuditEntry, AuditEntry.reason == "died 2026-10-02") == 1


async def test_cli_refuses_nothing_and_a_bad_cnic_without_touching_the_registry(
    registry: Database, tmp_path: Path, dump
) -> None:
    before = await dump(registry)
    runner = CliRunner()

    nothing = await asyncio.to_thread(runner.invoke, registry_app, ["remove"])
    bad_argument = await asyncio.to_thread(
        runner.invoke, registry_app, ["remove", ELIGIBLE, "12345"]
    )
    path = tmp_path / "leavers.txt"
    path.write_text(f"{ELIGIBLE}\nnot a cnic\n", encoding="utf-8")
    bad_file = await asyncio.to_thread(runner.invoke, registry_app, ["remove", "--file", str(path)])
    no_file = await asyncio.to_thread(
        runner.invoke, registry_app, ["remove", "--file", str(tmp_path / "nope.txt")]
    )

    assert nothing.exit_code == 2
    assert "Nothing to remove" in nothing.output
    assert bad_argument.exit_code == 2
    assert "'12345' is not a CNIC" in bad_argument.output
    assert bad_file.exit_code == 1
    assert "line 2: 'not a cnic' is not a CNIC" in bad_file.output
    assert "Nothing was removed: the registry is as it was." in bad_file.output
    assert no_file.exit_code == 1
    assert "nope.txt: no such file" in no_file.output
    for result in (nothing, bad_argument, bad_file, no_file):
        assert "Traceback" not in result.output
    assert await dump(registry) == before


async def test_cli_dry_run_says_what_would_happen(registry: Database) -> None:
    """A dry run's summary is in the conditional: nothing it names has happened."""
    await _rabta_records_for(registry, ELIGIBLE_WIFE)
    result = await asyncio.to_thread(
        CliRunner().invoke, registry_app, ["remove", ELIGIBLE_WIFE, "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "Dry run: nothing was changed." in output
    assert "1 contact(s) verified for a removed CNIC would no longer be verified." in output
    assert "1 open grievance(s) of removed persons would stay in the queue." in output
    assert "are no longer verified" not in output
    async with registry.engine.connect() as conn:
        contact = (await conn.execute(select(Contact.verified_cnic))).scalar_one()
    assert contact == ELIGIBLE_WIFE
