"""Every query the console makes of its own: staff accounts, the queue's and the audit log's
pages, and message traffic."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.agent.pages import Cursor, Page, Seek
from api.db import dialect_of, utc
from api.grievances.repository import QueueFilter
from api.outbox.service import OptedOutBy, suppressed_by
from api.registry.models import (
    Agent,
    AuditEntry,
    Grievance,
    InboundMessage,
    InboundTraffic,
    OutboundMessage,
    Person,
)

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


# -- pages of a list, by where they start and end ------------------------------------------

#: A list's order: a moment, then an id (unique, so every row has its own place).
Key = tuple[Any, Any]


def _beyond(key: Key, place: Cursor, *, descending: bool, later: bool) -> Any:
    """The rows coming after (`later`) or before `place` in the list's order."""
    row, at = tuple_(*key), tuple_(place.at, place.id)
    return row > at if later != descending else row < at


def _ordered(key: Key, *, descending: bool) -> list[Any]:
    return [column.desc() if descending else column.asc() for column in key]


def _place(row: Any, key: Key) -> Cursor:
    return Cursor(utc(getattr(row, key[0].key)), int(getattr(row, key[1].key)))


async def _reaches(
    session: AsyncSession, query: Any, key: Key, place: Cursor, *, descending: bool, later: bool
) -> bool:
    """Whether a row of `query` comes after (`later`) or before `place`: the nearest one, read
    from `place` on through the page's index (an EXISTS may read the table from its start)."""
    nearest = (
        query.with_only_columns(key[1])
        .where(_beyond(key, place, descending=descending, later=later))
        .order_by(*_ordered(key, descending=descending if later else not descending))
        .limit(1)
    )
    return await session.scalar(nearest) is not None


async def keyset_page(
    session: AsyncSession, query: Any, *, key: Key, descending: bool, seek: Seek, limit: int
) -> Page[Any]:
    """A page of `query`'s rows in `key` order (newest first if `descending`): the first
    `limit`, the `limit` after `seek.after`, or the `limit` just before `seek.before`. Each
    reads from its cursor on through an index on `key`, however deep the page (an OFFSET reads
    and drops every row before it); rows added or closed meanwhile move no other row from one
    page to another, so paging on and back shows each row once. A page before which, or after
    which, no row is left links to none."""
    step = -1 if descending else 1  # one id further in the list's order
    if seek.before is None:
        ahead = query
        if seek.after is not None:
            ahead = query.where(_beyond(key, seek.after, descending=descending, later=True))
        found = list(
            await session.scalars(
                ahead.order_by(*_ordered(key, descending=descending)).limit(limit + 1)
            )
        )
        rows = found[:limit]
        following = _place(rows[-1], key) if len(found) > limit else None
        preceding = None
        if seek.after is not None:
            # Every row past the cursor may have been closed since: the way back still starts
            # from the cursor's own row.
            first = _place(rows[0], key) if rows else seek.after.nudged(step)
            if await _reaches(session, query, key, first, descending=descending, later=False):
                preceding = first
        return Page(rows, preceding, following)
    behind = query.where(_beyond(key, seek.before, descending=descending, later=False))
    found = list(
        await session.scalars(
            behind.order_by(*_ordered(key, descending=not descending)).limit(limit + 1)
        )
    )
    rows = found[:limit][::-1]
    preceding = _place(rows[0], key) if len(found) > limit else None
    last = _place(rows[-1], key) if rows else seek.before.nudged(-step)
    following = last
    if not await _reaches(session, query, key, last, descending=descending, later=True):
        following = None
    return Page(rows, preceding, following)


# -- the grievance queue -------------------------------------------------------------------


async def queue_page(
    session: AsyncSession, where: QueueFilter, *, seek: Seek, limit: int
) -> Page[Grievance]:
    """A page of the agents' queue (the grievances `grievances.repository.count_queue` counts
    with the same filter), most urgent (earliest due) first; events are not loaded. Each tab
    reads through its own index in due order (the worked ones' partial indexes, migration 0008;
    a district's, 0012) from where the page starts."""
    query = where.apply(select(Grievance))
    return await keyset_page(
        session,
        query,
        key=(Grievance.due_at, Grievance.id),
        descending=False,
        seek=seek,
        limit=limit,
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
    session: AsyncSession, *, where: AuditFilter, seek: Seek, limit: int
) -> Page[AuditEntry]:
    """A page of the audit log, newest first."""
    return await keyset_page(
        session,
        where.apply(select(AuditEntry)),
        key=(AuditEntry.at, AuditEntry.id),
        descending=True,
        seek=seek,
        limit=limit,
    )


async def count_audit(session: AsyncSession, *, where: AuditFilter, cap: int | None = None) -> int:
    """How many entries match; with `cap`, counting stops past it (`cap + 1`: more than `cap`),
    so the unfiltered log is not read to its first entry."""
    query = where.apply(select(AuditEntry.id))
    if cap is not None:
        query = query.limit(cap + 1)
    return int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)


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
    #: Why the worker will keep the message and send nothing (the recipient sent STOP, told the
    #: carrier STOP, or blocked the bot), if it will.
    opted_out_by: OptedOutBy | None = None

    @property
    def opted_out(self) -> bool:
        return self.opted_out_by is not None


async def note_delivery(session: AsyncSession, *, event_id: int) -> NoteDelivery:
    """What the outbox holds for one grievance event (the notifier keys it by the event)."""
    message = await session.scalar(
        select(OutboundMessage).where(OutboundMessage.dedup_key == f"grievance-event:{event_id}")
    )
    if message is None:
        return NoteDelivery(queued=False)
    opted_out_by = await suppressed_by(session, message)
    return NoteDelivery(queued=True, channel=message.channel, opted_out_by=opted_out_by)


# -- message traffic, for the supervisors' dashboard ----------------------------------------

#: One count of inbound messages: (day or hour it starts, channel, language, intent, outcome, n).
TrafficRow = tuple[dt.datetime, str, str | None, str | None, str | None, int]
_HOUR = dt.timedelta(hours=1)


def _hour(session: AsyncSession) -> Any:
    """The UTC hour `received_at` falls in. Pakistan is a whole number of hours from UTC (and
    keeps no daylight saving), so every hour lies in one Pakistan calendar day."""
    if dialect_of(session) == "sqlite":
        return func.strftime("%Y-%m-%d %H:00:00", InboundMessage.received_at)
    return func.date_trunc("hour", InboundMessage.received_at, "UTC")


def _as_utc(value: object) -> dt.datetime:
    """A stored moment, or SQLite's text of one (what `_hour` gives there), as aware UTC."""
    if isinstance(value, dt.datetime):
        return utc(value)
    return utc(dt.datetime.fromisoformat(str(value)))


_DIMENSIONS = (
    InboundMessage.channel,
    InboundMessage.language,
    InboundMessage.intent,
    InboundMessage.outcome,
)
_COUNTED = (
    InboundTraffic.channel,
    InboundTraffic.language,
    InboundTraffic.intent,
    InboundTraffic.outcome,
)


async def traffic_counted_until(session: AsyncSession) -> dt.datetime | None:
    """The moment before which every inbound message is counted in `inbound_traffic` (None:
    nothing is): the end of its latest count."""
    row = (
        await session.execute(
            select(InboundTraffic.starts_at, InboundTraffic.hours)
            .order_by(InboundTraffic.starts_at.desc())
            .limit(1)
        )
    ).first()
    return _as_utc(row[0]) + row[1] * _HOUR if row else None


async def count_inbound_hours(
    session: AsyncSession, *, since: dt.datetime, until: dt.datetime | None = None
) -> list[TrafficRow]:
    """Inbound messages received in [since, until) counted per UTC hour, channel, language,
    intent and outcome: read through the index on `received_at`, so only those hours' rows."""
    hour = _hour(session).label("hour")
    query = select(hour, *_DIMENSIONS, func.count()).where(InboundMessage.received_at >= since)
    if until is not None:
        query = query.where(InboundMessage.received_at < until)
    rows = await session.execute(query.group_by(hour, *_DIMENSIONS))
    return [(_as_utc(h), c, lang, i, o, int(n)) for h, c, lang, i, o, n in rows]


async def next_inbound_at(
    session: AsyncSession, *, since: dt.datetime, until: dt.datetime
) -> dt.datetime | None:
    """When the first message received in [since, until) arrived (None: none did)."""
    first = await session.scalar(
        select(func.min(InboundMessage.received_at)).where(
            InboundMessage.received_at >= since, InboundMessage.received_at < until
        )
    )
    return _as_utc(first) if first is not None else None


async def lock_traffic_counts(session: AsyncSession) -> None:
    """Make parallel roll-ups (two `rabta worker`s) take turns: each reads where the counts end
    and adds after it; the dashboard's reads are not held up (SQLite has one writer anyway)."""
    if dialect_of(session) == "postgresql":
        await session.execute(text("LOCK TABLE inbound_traffic IN SHARE ROW EXCLUSIVE MODE"))


async def add_traffic_counts(session: AsyncSession, *, rows: list[TrafficRow], hours: int) -> None:
    """Store counts of `hours` hours each."""
    if rows:
        await session.execute(
            insert(InboundTraffic),
            [
                {
                    "starts_at": starts_at,
                    "hours": hours,
                    "channel": channel,
                    "language": language,
                    "intent": intent,
                    "outcome": outcome,
                    "messages": n,
                }
                for starts_at, channel, language, intent, outcome, n in rows
            ],
        )


async def hourly_traffic_before(session: AsyncSession, *, until: dt.datetime) -> list[TrafficRow]:
    """The hourly counts starting before `until`."""
    rows = await session.execute(
        select(InboundTraffic.starts_at, *_COUNTED, InboundTraffic.messages).where(
            InboundTraffic.hours == 1, InboundTraffic.starts_at < until
        )
    )
    return [(_as_utc(s), c, lang, i, o, int(n)) for s, c, lang, i, o, n in rows]


async def delete_hourly_traffic_before(session: AsyncSession, *, until: dt.datetime) -> None:
    await session.execute(
        delete(InboundTraffic).where(InboundTraffic.hours == 1, InboundTraffic.starts_at < until)
    )


async def counted_traffic(session: AsyncSession, *, since: dt.datetime) -> list[TrafficRow]:
    """The stored counts from `since` on, summed per start, channel, language, intent, outcome."""
    total = func.sum(InboundTraffic.messages)
    rows = await session.execute(
        select(InboundTraffic.starts_at, *_COUNTED, total)
        .where(InboundTraffic.starts_at >= since)
        .group_by(InboundTraffic.starts_at, *_COUNTED)
    )
    return [(_as_utc(s), c, lang, i, o, int(n)) for s, c, lang, i, o, n in rows]


# -- the registry, as the console shows a verified caller's household ------------------------


async def list_household_members(session: AsyncSession, *, household_id: str) -> list[Person]:
    """Everyone registered in a household, head first."""
    result = await session.scalars(
        select(Person)
        .where(Person.household_id == household_id)
        .order_by((Person.relation != "head"), Person.cnic)
    )
    return list(result)
