"""Every grievance query, in one place."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from api.db import dialect_of, insert_for
from api.grievances.schemas import CLOSED_STATUSES
from api.registry.models import Agent, Grievance, GrievanceEvent

#: The statuses of grievances no longer worked, as the partial index on them says it.
CLOSED = sorted(status.value for status in CLOSED_STATUSES)
#: What the dashboards break counts down by.
Dimension = Literal["category", "status", "district"]


async def insert_grievance(session: AsyncSession, *, values: dict[str, Any]) -> Grievance | None:
    """Insert a grievance with its events list loaded; None if its ticket id is already taken,
    or its draft (`draft_key`) already filed."""
    # ON CONFLICT instead of catching IntegrityError: a failed INSERT would poison the caller's
    # transaction on PostgreSQL, and SAVEPOINTs are unreliable on pysqlite. No conflict target:
    # the ticket id's and the draft's unique constraints both.
    new_id = await session.scalar(
        insert_for(dialect_of(session), Grievance)
        .values(**values)
        .on_conflict_do_nothing()
        .returning(Grievance.id)
    )
    if new_id is None:
        return None
    return await session.scalar(
        select(Grievance).options(selectinload(Grievance.events)).where(Grievance.id == new_id)
    )


async def get_by_draft_key(session: AsyncSession, *, draft_key: str) -> Grievance | None:
    """The grievance filed from this conversation draft, with its events, if any."""
    return await session.scalar(
        select(Grievance)
        .options(selectinload(Grievance.events))
        .where(Grievance.draft_key == draft_key)
    )


async def get_by_ticket_id(
    session: AsyncSession, *, ticket_id: str, for_update: bool = False
) -> Grievance | None:
    """The grievance with this canonical ticket id and its events; `for_update` locks the row."""
    query = (
        select(Grievance)
        .options(selectinload(Grievance.events))
        .where(Grievance.ticket_id == ticket_id)
    )
    if for_update:
        # Serialises an agent's change with a concurrent escalation run (no-op on SQLite, where
        # the single writer lock already does).
        query = query.with_for_update(of=Grievance)
    return await session.scalar(query.execution_options(populate_existing=for_update))


async def owner_of(session: AsyncSession, *, ticket_id: str) -> str | None:
    """The CNIC that filed a ticket, or None (for the server only: never shown to a caller)."""
    return await session.scalar(select(Grievance.cnic).where(Grievance.ticket_id == ticket_id))


async def get_for_owner(session: AsyncSession, *, cnic: str, ticket_id: str) -> Grievance | None:
    """The grievance with this ticket id if `cnic` filed it, else None (same query either way)."""
    return await session.scalar(
        select(Grievance)
        .options(selectinload(Grievance.events))
        .where(Grievance.ticket_id == ticket_id, Grievance.cnic == cnic)
    )


async def list_by_cnic(session: AsyncSession, *, cnic: str) -> list[Grievance]:
    """One person's grievances with their events, newest first."""
    result = await session.scalars(
        select(Grievance)
        .options(selectinload(Grievance.events))
        .where(Grievance.cnic == cnic)
        .order_by(Grievance.created_at.desc(), Grievance.id.desc())
    )
    return list(result)


@dataclass(frozen=True)
class QueueFilter:
    """Which grievances of the agents' queue a tab, a count or a badge is about; None (False)
    means any. `overdue_at`: only those due before that moment (pass now, in UTC); `district`
    as a supervisor types it ("lahore" or " Lahore " finds Lahore's)."""

    statuses: Collection[str] | None = None
    overdue_at: dt.datetime | None = None
    assigned_to: int | None = None
    unassigned: bool = False
    district: str | None = None
    category: str | None = None

    def apply(self, query: Any) -> Any:
        """`query` narrowed to these grievances (the console pages them:
        api/agent/repository.py `queue_page`)."""
        if self.statuses:
            query = query.where(Grievance.status.in_(list(self.statuses)))
        if self.overdue_at is not None:
            query = query.where(Grievance.due_at < self.overdue_at)
        if self.assigned_to is not None:
            query = query.where(Grievance.assigned_to == self.assigned_to)
        if self.unassigned:
            query = query.where(Grievance.assigned_to.is_(None))
        if self.district is not None:
            query = query.where(func.lower(Grievance.district) == self.district.strip().lower())
        if self.category is not None:
            query = query.where(Grievance.category == self.category)
        return query


async def count_queue(session: AsyncSession, where: QueueFilter, *, cap: int | None = None) -> int:
    """How many grievances `where` lets through; with `cap`, counting stops past it (`cap + 1`
    means more than `cap`): a tab of every grievance ever closed reads `cap` rows, not all of
    them."""
    query = where.apply(select(Grievance.id))
    if cap is not None:
        query = query.limit(cap + 1)
    return int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)


async def due_for_escalation(
    session: AsyncSession, *, now: dt.datetime, statuses: Collection[str], limit: int | None = None
) -> list[Grievance]:
    """Grievances in `statuses` past `due_at` and not yet escalated, locked, events loaded.

    `escalated_at IS NULL`: a supervisor who hands an escalated grievance back (to in_progress)
    must not see it bounce straight back on the next run; reopening clears it for a new round.

    On PostgreSQL rows another transaction holds are skipped (`SKIP LOCKED`), so parallel
    escalation runs split the work instead of escalating a grievance twice or waiting on each
    other; a row committed meanwhile is re-checked against the WHERE clause and drops out.
    SQLite has no row locks (SQLAlchemy leaves the clause out): its single writer serialises runs.
    """
    query = (
        select(Grievance)
        .options(selectinload(Grievance.events))
        .where(
            Grievance.status.in_(list(statuses)),
            Grievance.due_at < now,
            Grievance.escalated_at.is_(None),
        )
        .order_by(Grievance.due_at, Grievance.id)
        .with_for_update(skip_locked=True, of=Grievance)
        # Another run may have escalated rows this session already holds in its identity map.
        .execution_options(populate_existing=True)
    )
    if limit is not None:
        query = query.limit(limit)
    return list(await session.scalars(query))


async def count_by(
    session: AsyncSession,
    *,
    dimension: Dimension,
    statuses: Collection[str] | None = None,
    district: str | None = None,
) -> dict[str | None, int]:
    """Grievance counts for a dashboard, by category, status or district (None: no district)."""
    column = {
        "category": Grievance.category,
        "status": Grievance.status,
        "district": Grievance.district,
    }[dimension]
    query = select(column, func.count()).group_by(column)
    if statuses:
        query = query.where(Grievance.status.in_(list(statuses)))
    if district is not None:
        query = query.where(Grievance.district == district)
    rows = await session.execute(query)
    return {key: int(count) for key, count in rows}


async def count_closed(session: AsyncSession, *, since: dt.datetime) -> dict[str | None, int]:
    """Grievances resolved or rejected (and not reopened) since `since`, by status: those whose
    change to the status they hold happened in the period, not those merely touched in it (a
    note on one closed long ago). Read from the period's resolutions and rejections through
    their partial index, so only the period's, never every grievance ever closed."""
    rows = await session.execute(
        select(Grievance.status, func.count(distinct(Grievance.id)))
        .join(
            GrievanceEvent,
            (GrievanceEvent.grievance_id == Grievance.id)
            & (GrievanceEvent.to_status == Grievance.status),
        )
        .where(GrievanceEvent.to_status.in_(CLOSED), GrievanceEvent.at >= since)
        .group_by(Grievance.status)
    )
    return {status: int(count) for status, count in rows}


async def count_overdue(
    session: AsyncSession, *, now: dt.datetime, statuses: Collection[str]
) -> int:
    """How many grievances in `statuses` are past due: the SLA-breach gauge."""
    return int(
        await session.scalar(
            select(func.count())
            .select_from(Grievance)
            .where(Grievance.status.in_(list(statuses)), Grievance.due_at < now)
        )
        or 0
    )


async def get_agent(session: AsyncSession, *, agent_id: int) -> Agent | None:
    """The agent with this id, to assign grievances to."""
    return await session.get(Agent, agent_id)
