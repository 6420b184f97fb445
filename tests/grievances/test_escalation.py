"""SLA escalation on a controllable clock, the notify hook, and parallel runs on PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import func, select

from api.db import Database
from api.grievances import service
from api.grievances.schemas import Category, Status
from api.registry.models import Grievance, GrievanceEvent, OutboundMessage
from api.settings import Settings
from tests.grievances.conftest import T0, as_utc, change_as_agent, file_one


async def _escalated_events(db: Database) -> dict[int, int]:
    """grievance id → how many `escalated` events it has."""
    async with db.transaction() as session:
        rows = await session.execute(
            select(GrievanceEvent.grievance_id, func.count())
            .where(GrievanceEvent.action == "escalated")
            .group_by(GrievanceEvent.grievance_id)
        )
        return {grievance_id: int(count) for grievance_id, count in rows}


async def test_escalates_exactly_the_overdue(db: Database, settings: Settings) -> None:
    sla = settings.grievance_sla_days  # deduction 3 days, payment 7, eligibility 30
    async with db.transaction() as session:
        deduction = await file_one(session, settings, category=Category.DEDUCTION_BY_AGENT)
        payment = await file_one(session, settings, category=Category.PAYMENT_NOT_RECEIVED)
        dispute = await file_one(session, settings, category=Category.ELIGIBILITY_DISPUTE)
        working = await file_one(session, settings, category=Category.DEDUCTION_BY_AGENT)
        done = await file_one(session, settings, category=Category.DEDUCTION_BY_AGENT)
        for grievance, status in ((working, Status.IN_PROGRESS), (done, Status.RESOLVED)):
            await change_as_agent(session, settings, grievance.ticket_id, status)

    # Exactly at due time the SLA holds; a second later it is breached.
    at_due = T0 + dt.timedelta(days=sla["deduction_by_agent"])
    async with db.transaction() as session:
        assert await service.escalate_overdue(session, now=at_due) == []
    later = at_due + dt.timedelta(seconds=1)
    async with db.transaction() as session:
        escalated = await service.escalate_overdue(session, now=later)
    expected = sorted([deduction.ticket_id, working.ticket_id])
    assert sorted(g.ticket_id for g in escalated) == expected
    for grievance in escalated:
        assert grievance.status == "escalated"
        assert as_utc(grievance.escalated_at) == later
        event = grievance.events[-1]
        assert (event.action, event.actor, event.note, event.to_status) == (
            "escalated",
            "system",
            "SLA breached",
            "escalated",
        )
    assert {g.ticket_id: g.events[-1].from_status for g in escalated} == {
        deduction.ticket_id: "open",
        working.ticket_id: "in_progress",
    }

    # Idempotent: a second run at the same moment finds nothing.
    async with db.transaction() as session:
        assert await service.escalate_overdue(session, now=later) == []

    # A week on, the payment grievance breaches too; the dispute (30 days) still has time.
    async with db.transaction() as session:
        escalated = await service.escalate_overdue(session, now=T0 + dt.timedelta(days=8))
    assert [g.ticket_id for g in escalated] == [payment.ticket_id]
    assert dispute.ticket_id not in await _tickets_with_status(db, "escalated")
    assert set((await _escalated_events(db)).values()) == {1}


async def _tickets_with_status(db: Database, status: str) -> set[str]:
    async with db.transaction() as session:
        return set(
            await session.scalars(select(Grievance.ticket_id).where(Grievance.status == status))
        )


async def test_notify_once_per_grievance_inside_the_transaction(
    db: Database, settings: Settings
) -> None:
    async with db.transaction() as session:
        filed = [await file_one(session, settings) for _ in range(3)]
    calls: list[tuple[str, str]] = []

    async def notify(grievance: Grievance, event: GrievanceEvent) -> None:
        # Inside the same transaction: the change is flushed and visible to this session's SQL.
        stored = await session.scalar(select(Grievance.status).where(Grievance.id == grievance.id))
        assert stored == "escalated"
        assert event.id is not None and event.grievance_id == grievance.id
        calls.append((grievance.ticket_id, event.action))
        session.add(
            OutboundMessage(
                channel=grievance.channel,
                to="+923001234567",
                body=f"Shikayat {grievance.ticket_id} supervisor ko bhej di gayi hai",
                kind="escalation",
                grievance_id=grievance.id,
                dedup_key=f"grievance-event:{event.id}",
            )
        )

    past_due = T0 + dt.timedelta(days=30)
    async with db.transaction() as session:
        await service.escalate_overdue(session, now=past_due, notify=notify)
    async with db.transaction() as session:
        await service.escalate_overdue(session, now=past_due, notify=notify)
    assert sorted(calls) == sorted((g.ticket_id, "escalated") for g in filed)
    async with db.transaction() as session:
        messages = await session.scalar(select(func.count()).select_from(OutboundMessage))
    assert messages == 3


async def test_failing_notify_rolls_the_escalation_back(db: Database, settings: Settings) -> None:
    async with db.transaction() as session:
        grievance = await file_one(session, settings)

    async def notify(grievance: Grievance, event: GrievanceEvent) -> None:
        raise RuntimeError("outbox unavailable")

    with pytest.raises(RuntimeError, match="outbox unavailable"):
        async with db.transaction() as session:
            await service.escalate_overdue(session, now=T0 + dt.timedelta(days=30), notify=notify)
    assert await _tickets_with_status(db, "open") == {grievance.ticket_id}
    assert await _escalated_events(db) == {}


async def test_change_status_notifies(db: Database, settings: Settings) -> None:
    seen: list[tuple[str | None, str | None]] = []

    async def notify(grievance: Grievance, event: GrievanceEvent) -> None:
        seen.append((event.from_status, event.to_status))

    async with db.transaction() as session:
        grievance = await file_one(session, settings, notify=notify)
        for target in (Status.IN_PROGRESS, Status.RESOLVED, Status.OPEN):
            await change_as_agent(session, settings, grievance.ticket_id, target, notify=notify)
    assert seen == [
        (None, "open"),
        ("open", "in_progress"),
        ("in_progress", "resolved"),
        ("resolved", "open"),
    ]


async def test_reopened_grievance_escalates_again_on_its_new_clock(
    db: Database, settings: Settings
) -> None:
    sla = settings.grievance_sla_days["payment_not_received"]
    async with db.transaction() as session:
        grievance = await file_one(session, settings)
        ticket_id = grievance.ticket_id
        await service.escalate_overdue(session, now=T0 + dt.timedelta(days=sla, hours=1))
        for target in (Status.RESOLVED, Status.OPEN):
            await change_as_agent(
                session, settings, ticket_id, target, now=T0 + dt.timedelta(days=10)
            )
        assert grievance.escalated_at is None
        assert await service.escalate_overdue(session, now=T0 + dt.timedelta(days=11)) == []
        again = await service.escalate_overdue(session, now=T0 + dt.timedelta(days=10 + sla + 1))
    assert [g.ticket_id for g in again] == [ticket_id]
    assert (await _escalated_events(db)) == {grievance.id: 2}


async def test_handed_back_grievance_does_not_bounce(db: Database, settings: Settings) -> None:
    """A supervisor takes an escalated grievance back to in_progress: it stays there."""
    async with db.transaction() as session:
        grievance = await file_one(session, settings)
        await service.escalate_overdue(session, now=T0 + dt.timedelta(days=8))
        await service.change_status(
            session,
            ticket_id=grievance.ticket_id,
            to=Status.IN_PROGRESS,
            actor="supervisor1",
            note="Bank statement requested",
            sla_days=settings.grievance_sla_days,
            now=T0 + dt.timedelta(days=9),
        )
        assert await service.escalate_overdue(session, now=T0 + dt.timedelta(days=10)) == []
    assert grievance.status == "in_progress"
    assert await _escalated_events(db) == {grievance.id: 1}


async def test_limit_takes_the_earliest_due(db: Database, settings: Settings) -> None:
    async with db.transaction() as session:
        filed = [
            await file_one(session, settings, now=T0 + dt.timedelta(hours=hour))
            for hour in (3, 1, 2)
        ]
    async with db.transaction() as session:
        first = await service.escalate_overdue(session, now=T0 + dt.timedelta(days=30), limit=2)
    assert [g.ticket_id for g in first] == [filed[1].ticket_id, filed[2].ticket_id]


# -- PostgreSQL: parallel runs -----------------------------------------------------------------


def _require_postgres(db: Database) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip(
            "row locks (FOR UPDATE SKIP LOCKED) exist only on PostgreSQL; "
            "SQLite has one writer at a time, so its runs cannot interleave"
        )


async def _filed_overdue(db: Database, settings: Settings, count: int) -> set[str]:
    async with db.transaction() as session:
        return {(await file_one(session, settings)).ticket_id for _ in range(count)}


async def test_parallel_runs_escalate_each_once(db: Database, settings: Settings) -> None:
    _require_postgres(db)
    tickets = await _filed_overdue(db, settings, 25)
    past_due = T0 + dt.timedelta(days=30)
    start = asyncio.Event()

    async def run() -> list[str]:
        async with db.transaction() as session:
            await start.wait()

            async def slow_notify(grievance: Grievance, event: GrievanceEvent) -> None:
                await asyncio.sleep(0.005)  # hold the locks while the other run queries

            escalated = await service.escalate_overdue(session, now=past_due, notify=slow_notify)
            return [g.ticket_id for g in escalated]

    runs = [asyncio.create_task(run()) for _ in range(2)]
    await asyncio.sleep(0.05)
    start.set()
    first, second = await asyncio.gather(*runs)
    assert not set(first) & set(second)
    assert set(first) | set(second) == tickets
    assert len(first) + len(second) == 25
    assert set((await _escalated_events(db)).values()) == {1}


async def test_parallel_batched_workers_share_the_work(db: Database, settings: Settings) -> None:
    _require_postgres(db)
    tickets = await _filed_overdue(db, settings, 40)
    past_due = T0 + dt.timedelta(days=30)

    async def worker() -> list[str]:
        done: list[str] = []
        while True:
            async with db.transaction() as session:

                async def slow_notify(grievance: Grievance, event: GrievanceEvent) -> None:
                    await asyncio.sleep(0.002)

                batch = await service.escalate_overdue(
                    session, now=past_due, limit=4, notify=slow_notify
                )
            if not batch:
                return done
            done.extend(g.ticket_id for g in batch)

    results = await asyncio.gather(*(worker() for _ in range(3)))
    everything = [ticket for result in results for ticket in result]
    assert sorted(everything) == sorted(tickets)  # each exactly once
    assert sum(1 for result in results if result) >= 2  # the work really was shared
    assert set((await _escalated_events(db)).values()) == {1}


async def test_agent_change_and_escalation_race(db: Database, settings: Settings) -> None:
    """An agent resolving while escalation runs: whichever locks first wins, no lost update."""
    _require_postgres(db)
    [ticket_id] = await _filed_overdue(db, settings, 1)
    past_due = T0 + dt.timedelta(days=30)
    async with db.transaction() as agent_session:
        await change_as_agent(agent_session, settings, ticket_id, Status.RESOLVED, now=past_due)
        # The agent's row lock is held: escalation skips the grievance instead of waiting (a run
        # that waited here would wait forever, for the agent's commit comes after it).
        async with db.transaction() as system_session:
            escalated = await asyncio.wait_for(
                service.escalate_overdue(system_session, now=past_due), timeout=5
            )
            assert escalated == []
    async with db.transaction() as session:
        assert await service.escalate_overdue(session, now=past_due) == []
    assert await _tickets_with_status(db, "resolved") == {ticket_id}
