"""Queries on contacts and the inbound-message log: the few statements every message makes.

An inbound message costs three statements here, whatever the channel: claim its provider id,
upsert its contact (which also stamps `last_inbound_at` and gives a new contact the language its
phone already has), and store the reply on the claimed row by id; a contact that changed (a
language chosen, a verification) costs one UPDATE more. A look-up in an idle conversation costs
two: the contact's upsert, with the CNIC's household read in the same statement, and the message
recorded with its reply (`record_answered`), both committing without waiting for the disk
(api/hot.py `ASYNC_COMMIT`: the answer is given already). They run on every one of millions of
messages, so they are built once per dialect as Core statements with bound parameters and run
on the session's connection: no ORM objects, no statement built per message
(docs/performance.md counts the round trips and profiles the rest).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from functools import cache
from typing import Any, cast

from sqlalchemy import Executable, Insert, Table, bindparam, func, select, true, update
from sqlalchemy.orm import aliased

from api import hot
from api.db import dialect_of, insert_for, utc
from api.registry import repository as registry
from api.registry.models import Contact, InboundMessage

INBOUND: Table = cast(Table, InboundMessage.__table__)
CONTACTS: Table = cast(Table, Contact.__table__)


@dataclass(frozen=True, slots=True)
class Claim:
    """A provider message id recorded in the inbound log."""

    #: The row's id: the reply is stored on it by `finish_inbound`.
    id: int
    #: True when the id was recorded before: a replay, to be answered with `reply`.
    replay: bool
    reply: str | None = None
    language: str | None = None


@dataclass(slots=True)
class ContactRecord:
    """A contact as this message found it; `save_contact` writes back what the message changed."""

    id: int
    phone: str | None
    language: str | None
    opted_out: bool
    verified_cnic: str | None
    verified_until: dt.datetime | None
    _found: tuple[Any, ...] = field(default=(), repr=False, compare=False)

    def _values(self) -> tuple[Any, ...]:
        return tuple(_comparable(getattr(self, f)) for f in _SAVED)

    def changes(self) -> dict[str, Any]:
        """The columns whose value differs from what the upsert returned."""
        pairs = zip(_SAVED, self._found, self._values(), strict=True)
        return {name: getattr(self, name) for name, found, now in pairs if found != now}


_SAVED = tuple(f.name for f in fields(ContactRecord) if f.name not in ("id", "_found"))


def _comparable(value: Any) -> Any:
    # SQLite hands back naive datetimes (stored in UTC), and a verification that went through a
    # float timestamp may differ in the last microseconds: compare to the millisecond.
    if isinstance(value, dt.datetime):
        return round(utc(value).timestamp(), 3)
    return value


def _recorded(dialect: str, *columns: str) -> Insert:
    """INSERT the message's provider id (and `columns`, bound by name) unless it is there."""
    return (
        insert_for(dialect, INBOUND)
        .values(
            channel=bindparam("channel"),
            external_id=bindparam("external_id"),
            received_at=bindparam("now"),
            **{column: bindparam(column) for column in columns},
        )
        .on_conflict_do_nothing(index_elements=["channel", "external_id"])
        .returning(INBOUND.c.id)
    )


@cache
def _claim_statement(dialect: str) -> Executable:
    return _recorded(dialect)


@cache
def _record_statement(dialect: str) -> Executable:
    recorded = _recorded(dialect, "contact_id", "reply", "intent", "outcome", "language")
    # An answer already given: its record commits without waiting for the disk (api/hot.py).
    return recorded.returning(hot.ASYNC_COMMIT) if dialect == "postgresql" else recorded


_EARLIER = select(INBOUND.c.id, INBOUND.c.reply, INBOUND.c.language).where(
    INBOUND.c.channel == bindparam("channel"), INBOUND.c.external_id == bindparam("external_id")
)

_FINISH = (
    update(INBOUND)
    .where(INBOUND.c.id == bindparam("claim_id"))
    .values(
        contact_id=bindparam("contact_id"),
        reply=bindparam("reply"),
        intent=bindparam("intent"),
        outcome=bindparam("outcome"),
        language=bindparam("language"),
    )
)


@cache
def _upsert_statement(dialect: str, *, with_phone: bool) -> Insert:
    """Insert or touch the contact; with a proven phone, a contact with no language takes the
    one chosen most recently on any of that phone's contacts (people.py)."""
    insert = insert_for(dialect, CONTACTS)
    values: dict[str, Any] = {
        "channel": bindparam("channel"),
        "address": bindparam("address"),
        "phone": bindparam("phone"),
        "opted_out": False,
        "created_at": bindparam("now"),
        "last_inbound_at": bindparam("now"),
    }
    on_conflict: dict[str, Any] = {"last_inbound_at": insert.excluded.last_inbound_at}
    if with_phone:
        other = aliased(CONTACTS)
        values["language"] = (
            select(other.c.language)
            .where(other.c.phone == bindparam("phone"), other.c.language.is_not(None))
            .order_by(other.c.last_inbound_at.desc().nulls_last(), other.c.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        on_conflict["language"] = func.coalesce(CONTACTS.c.language, insert.excluded.language)
    return (
        insert.values(**values)
        .on_conflict_do_update(index_elements=["channel", "address"], set_=on_conflict)
        .returning(
            CONTACTS.c.id,
            CONTACTS.c.phone,
            CONTACTS.c.language,
            CONTACTS.c.opted_out,
            CONTACTS.c.verified_cnic,
            CONTACTS.c.verified_until,
        )
    )


async def claim_inbound(session: hot.Executor, *, channel: str, external_id: str) -> Claim:
    """Record a provider message id; a replay gets the earlier row's reply.

    On PostgreSQL a concurrent duplicate waits here until the first transaction commits, so it
    sees the first one's reply instead of answering twice.
    """
    params = {"channel": channel, "external_id": external_id}
    inserted = await hot.rows(
        session, _claim_statement(dialect_of(session)), {**params, "now": dt.datetime.now(dt.UTC)}
    )
    if inserted:
        return Claim(id=inserted[0][0], replay=False)
    return await earlier_reply(session, **params)


async def earlier_reply(session: hot.Executor, *, channel: str, external_id: str) -> Claim:
    """The reply stored for a provider message id that is already recorded."""
    params = {"channel": channel, "external_id": external_id}
    ((earlier_id, reply, language),) = await hot.rows(session, _EARLIER, params)
    return Claim(id=earlier_id, replay=True, reply=reply, language=language)


async def record_answered(
    session: hot.Executor,
    *,
    channel: str,
    external_id: str,
    reply: str,
    intent: str,
    language: str,
    outcome: str | None = None,
    contact_id: int | None = None,
) -> Claim | None:
    """Record a message that was answered before it was claimed, with its reply, in one
    statement: None when recorded; when its id was recorded before (a replay), the earlier row,
    whose reply is the answer.

    Only for answers with no side effects but Redis counters (a look-up, a cached resend), on a
    connection in autocommit: this INSERT is the whole write of the message, and on PostgreSQL
    it commits without waiting for the disk (api/hot.py; refused in a transaction).
    """
    inserted = await hot.rows(
        session,
        _record_statement(dialect_of(session)),
        {
            "channel": channel,
            "external_id": external_id,
            "now": dt.datetime.now(dt.UTC),
            "contact_id": contact_id,
            "reply": reply,
            "intent": intent,
            "outcome": outcome,
            "language": language,
        },
    )
    if inserted:
        return None
    return await earlier_reply(session, channel=channel, external_id=external_id)


async def finish_inbound(
    session: hot.Executor,
    claim: Claim,
    *,
    contact_id: int,
    reply: str,
    intent: str,
    language: str,
    outcome: str | None = None,
) -> None:
    """Store the reply (and what the message was) on the claimed row, in one UPDATE by id."""
    await hot.rows(
        session,
        _FINISH,
        {
            "claim_id": claim.id,
            "contact_id": contact_id,
            "reply": reply,
            "intent": intent,
            "outcome": outcome,
            "language": language,
        },
    )


def _contact_params(
    channel: str, address: str, phone: str | None, now: dt.datetime | None
) -> dict[str, Any]:
    return {
        "channel": channel,
        "address": address,
        "phone": phone,
        "now": now or dt.datetime.now(dt.UTC),
    }


def _contact(row: Sequence[Any]) -> ContactRecord:
    contact = ContactRecord(*row)
    contact._found = contact._values()
    return contact


def known_contact(
    contact_id: int,
    *,
    phone: str | None,
    language: str | None,
    verified_cnic: str | None,
    verified_until: dt.datetime | None,
) -> ContactRecord:
    """A contact as an earlier message of the same session left it (no statement): only what
    this message changes from these values is saved. Its opt-out is not known here, and is
    left as it is in the database."""
    return _contact((contact_id, phone, language, False, verified_cnic, verified_until))


async def get_or_create_contact(
    session: hot.Executor,
    *,
    channel: str,
    address: str,
    phone: str | None,
    now: dt.datetime | None = None,
) -> ContactRecord:
    """The contact for a channel address, created on first contact, in one statement.

    The same statement stamps `last_inbound_at` and, when the channel proves a phone, gives a
    contact without a language the one the person chose on another channel (people.py).
    """
    statement = _upsert_statement(dialect_of(session), with_phone=phone is not None)
    (row,) = await hot.rows(session, statement, _contact_params(channel, address, phone, now))
    return _contact(row)


@cache
def _upsert_with_household_statement(*, with_phone: bool) -> Executable:
    """PostgreSQL: the contact's upsert as a CTE, and the coarse status of a CNIC's household
    beside it (registry.HOUSEHOLD_STATUS: at most one row, by primary key)."""
    contact = _upsert_statement("postgresql", with_phone=with_phone).cte("contact")
    household = registry.HOUSEHOLD_STATUS.subquery("household")
    # A look-up's contact commits as its record does, without waiting for the disk (api/hot.py).
    return select(
        contact, household.c.status, household.c.pmt_score, household.c.mobile, hot.ASYNC_COMMIT
    ).select_from(contact.outerjoin(household, true()))


async def get_or_create_contact_reading_household(
    session: hot.Executor,
    *,
    channel: str,
    address: str,
    phone: str | None,
    cnic: str,
    now: dt.datetime | None = None,
) -> tuple[ContactRecord, registry.Coarse | None]:
    """`get_or_create_contact`, and `registry.household_status(cnic)` read in the same round
    trip on PostgreSQL (two statements elsewhere). For the look-up lane, whose answer needs
    both: the registry must be in this session's database."""
    if dialect_of(session) != "postgresql":
        contact = await get_or_create_contact(
            session, channel=channel, address=address, phone=phone, now=now
        )
        return contact, await registry.household_status(session, cnic=cnic)
    statement = _upsert_with_household_statement(with_phone=phone is not None)
    params = {**_contact_params(channel, address, phone, now), "cnic": cnic}
    (row,) = await hot.rows(session, statement, params)
    *contact_row, status, pmt_score, mobile, _ = row
    # A household's status is never NULL: NULL here is the outer join finding no one.
    return _contact(contact_row), (status, pmt_score, mobile) if status is not None else None


@cache
def _save_statement(columns: tuple[str, ...]) -> Executable:
    """UPDATE these columns of one contact (one statement per set of columns, built once)."""
    return (
        update(CONTACTS)
        .where(CONTACTS.c.id == bindparam("contact_id"))
        .values({column: bindparam(f"new_{column}") for column in columns})
    )


async def save_contact(session: hot.Executor, contact: ContactRecord) -> None:
    """Write back what this message changed on its contact (nothing: no statement), and only
    that: a message that chose a language leaves a verification another one proved alone."""
    changes = contact.changes()
    if not changes:
        return
    params = {f"new_{column}": value for column, value in changes.items()}
    await hot.rows(session, _save_statement(tuple(changes)), {"contact_id": contact.id, **params})
    contact._found = contact._values()
