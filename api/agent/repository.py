"""Every query the console makes of its own: staff accounts, the audit log and message traffic."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Date, cast, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.agent.i18n import PKT_ZONE
from api.outbox.service import will_be_suppressed
from api.registry.models import Agent, AuditEntry, InboundMessage, OutboundMessage, Person

# -- staff ---------------------------------------------------------------------------------


async def get_agent(session: AsyncSession, *, agent_id: int) -> Agent | None:
    return await session.get(Agent, agent_id, populate_existing=True)


async def get_agent_by_username(session: AsyncSession, *, username: str) -> Agent | None:
    return await session.scalar(select(Agent).where(Agent.username == username))


async def list_agents(session: AsyncSession, *, active_only: bool = True) -> list[Agent]:
    """Staff by username, to assign grievances to."""
    query = select(Agent).order_by(Agent.username)
    if active_only:
        query = query.where(Agent.active.is_(True))
    return list(await session.scalars(query))


async def usernames_by_id(session: AsyncSession, *, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await session.execute(select(Agent.id, Agent.username).where(Agent.id.in_(ids)))
    return {agent_id: username for agent_id, username in rows}


async def count_failed_login(session: AsyncSession, *, agent_id: int) -> int:
    """Add one failed login, atomically (parallel guesses all count); the new count."""
    result = await session.scalar(
        update(Agent)
        .where(Agent.id == agent_id)
        .values(failed_logins=Agent.failed_logins + 1)
        .returning(Agent.failed_logins)
    )
    return int(result or 0)


async def lock_agent(session: AsyncSession, *, agent_id: int, until: dt.datetime) -> None:
    """Lock the account until `until` and start counting failures afresh after it."""
    await session.execute(
        update(Agent).where(Agent.id == agent_id).values(locked_until=until, failed_logins=0)
    )


async def clear_failed_logins(session: AsyncSession, *, agent_id: int) -> None:
    await session.execute(
        update(Agent).where(Agent.id == agent_id).values(locked_until=None, failed_logins=0)
    )


# -- the audit log -------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilter:
    """What the audit page narrows the log to; None means any."""

    actor: str | None = None
    action: str | None = None
    record_type: str | None = None
    record_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def apply(self, query: Any) -> Any:
        if self.actor:
            query = query.where(AuditEntry.actor == self.actor)
        if self.action:
            query = query.where(AuditEntry.action == self.action)
        if self.record_type:
            query = query.where(AuditEntry.record_type == self.record_type)
        if self.record_id:
            query = query.where(AuditEntry.record_id == self.record_id)
        if self.since is not None:
            query = query.where(AuditEntry.at >= self.since)
        if self.until is not None:
            query = query.where(AuditEntry.at < self.until)
        return query


async def add_audit_entry(session: AsyncSession, entry: AuditEntry) -> None:
    session.add(entry)
    await session.flush()


async def list_audit(
    session: AsyncSession, *, where: AuditFilter, limit: int, offset: int
) -> list[AuditEntry]:
    """A page of the audit log, newest first."""
    query = where.apply(select(AuditEntry))
    result = await session.scalars(
        query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit).offset(offset)
    )
    return list(result)


async def count_audit(session: AsyncSession, *, where: AuditFilter) -> int:
    query = where.apply(select(func.count()).select_from(AuditEntry))
    return int(await session.scalar(query) or 0)


async def stream_audit(
    session: AsyncSession, *, where: AuditFilter, limit: int
) -> AsyncIterator[AuditEntry]:
    """The audit log, newest first, row by row (for exports larger than memory should hold)."""
    query = where.apply(select(AuditEntry)).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    result = await session.stream_scalars(query.limit(limit).execution_options(yield_per=1000))
    async for entry in result:
        yield entry


# -- what became of a note for the caller ---------------------------------------------------


@dataclass(frozen=True)
class NoteDelivery:
    """Whether a grievance event's message to its owner was queued, where, and if it will go."""

    queued: bool
    channel: str | None = None
    #: The recipient sent STOP on that channel: the worker keeps the message and sends nothing.
    opted_out: bool = False


async def note_delivery(session: AsyncSession, *, event_id: int) -> NoteDelivery:
    """What the outbox holds for one grievance event (the notifier keys it by the event)."""
    message = await session.scalar(
        select(OutboundMessage).where(OutboundMessage.dedup_key == f"grievance-event:{event_id}")
    )
    if message is None:
        return NoteDelivery(queued=False)
    opted_out = await will_be_suppressed(session, message)
    return NoteDelivery(queued=True, channel=message.channel, opted_out=opted_out)


# -- message traffic, for the supervisors' dashboard ----------------------------------------


def _day(session: AsyncSession) -> Any:
    """The Pakistan calendar day of `received_at`, in the session's SQL dialect: a message at
    00:30 in Lahore (19:30 UTC the evening before) counts for the day the call centre is in."""
    dialect = session.bind.dialect.name if session.bind else "postgresql"
    if dialect == "sqlite":
        # SQLite keeps UTC datetimes as ISO text; date() moves it to Pakistan time (UTC+5, no
        # daylight saving) and takes the day part.
        return func.date(InboundMessage.received_at, "+5 hours")
    return cast(func.timezone(PKT_ZONE, InboundMessage.received_at), Date)


def _as_date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


async def inbound_per_day(
    session: AsyncSession, *, since: dt.datetime, intent: str | None = None
) -> list[tuple[dt.date, str, int]]:
    """(day, channel, messages) for every day since `since` that had traffic (of one intent)."""
    day = _day(session).label("day")
    query = (
        select(day, InboundMessage.channel, func.count())
        .where(InboundMessage.received_at >= since)
        .group_by(day, InboundMessage.channel)
        .order_by(day)
    )
    if intent is not None:
        query = query.where(InboundMessage.intent == intent)
    rows = await session.execute(query)
    return [(_as_date(d), channel, int(n)) for d, channel, n in rows]


async def inbound_by(
    session: AsyncSession, *, column: str, since: dt.datetime, intent: str | None = None
) -> dict[str | None, int]:
    """Inbound messages since `since` counted by `language`, `intent` or `channel` (or any other
    column of inbound_messages), optionally only those of one intent."""
    key = getattr(InboundMessage, column)
    query = select(key, func.count()).where(InboundMessage.received_at >= since).group_by(key)
    if intent is not None:
        query = query.where(InboundMessage.intent == intent)
    rows = await session.execute(query)
    return {value: int(n) for value, n in rows}


# -- the registry, as the console shows a verified caller's household ------------------------


async def list_household_members(session: AsyncSession, *, household_id: str) -> list[Person]:
    """Everyone registered in a household, head first."""
    result = await session.scalars(
        select(Person)
        .where(Person.household_id == household_id)
        .order_by((Person.relation != "head"), Person.cnic)
    )
    return list(result)
