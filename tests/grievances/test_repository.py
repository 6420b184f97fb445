"""The agents' queue and dashboard counts."""

from __future__ import annotations

import datetime as dt

from api.agent.pages import Seek
from api.agent.repository import queue_page
from api.db import Database
from api.grievances import repository, service
from api.grievances.schemas import ACTIVE_STATUSES, Category, Status
from api.registry.models import Agent
from api.settings import Settings
from tests.grievances.conftest import T0, change_as_agent, file_one

ACTIVE = [s.value for s in ACTIVE_STATUSES]


async def _fill(db: Database, settings: Settings) -> None:
    """Six grievances over two districts, one assigned, one in progress, one resolved."""
    async with db.transaction() as session:
        session.add(Agent(id=1, username="agent1", password_hash="x", role="agent"))
        specs = [
            (Category.DEDUCTION_BY_AGENT, "Lahore", 0),
            (Category.PAYMENT_NOT_RECEIVED, "Lahore", 1),
            (Category.PAYMENT_NOT_RECEIVED, "Karachi Central", 2),
            (Category.ELIGIBILITY_DISPUTE, "Karachi Central", 3),
            (Category.OTHER, None, 4),
            (Category.DATA_CORRECTION, "Lahore", 5),
        ]
        filed = [
            await file_one(
                session,
                settings,
                category=category,
                district=district,
                now=T0 + dt.timedelta(hours=hour),
            )
            for category, district, hour in specs
        ]
        await service.assign(session, ticket_id=filed[1].ticket_id, agent_id=1, actor="sup")
        for grievance, status in ((filed[2], Status.IN_PROGRESS), (filed[5], Status.RESOLVED)):
            await change_as_agent(session, settings, grievance.ticket_id, status)


async def _queue(session, **filters) -> list:
    """The whole queue with these filters, in the console's order (its first page, unbounded)."""
    return (
        await queue_page(session, repository.QueueFilter(**filters), seek=Seek(), limit=1000)
    ).rows


async def test_queue_filters(db: Database, settings: Settings) -> None:
    await _fill(db, settings)
    async with db.transaction() as session:
        everything = await _queue(session)
        active = await _queue(session, statuses=ACTIVE)
        lahore = await _queue(session, statuses=ACTIVE, district="Lahore")
        mine = await _queue(session, assigned_to=1)
        unassigned = await _queue(session, statuses=ACTIVE, unassigned=True)
        overdue = await _queue(session, statuses=ACTIVE, overdue_at=T0 + dt.timedelta(days=5))
        payments = await _queue(session, category="payment_not_received")
        active_count = await repository.count_queue(
            session, repository.QueueFilter(statuses=ACTIVE)
        )
    assert len(everything) == 6 and len(active) == 5 and active_count == 5
    due = [g.due_at for g in active]
    assert due == sorted(due)  # most urgent first
    assert active[0].category == "deduction_by_agent"  # 3-day SLA
    assert {g.district for g in lahore} == {"Lahore"} and len(lahore) == 2
    assert [g.category for g in mine] == ["payment_not_received"]
    assert len(unassigned) == 4
    assert [g.category for g in overdue] == ["deduction_by_agent"]
    assert len(payments) == 2


async def test_dashboard_counts(db: Database, settings: Settings) -> None:
    await _fill(db, settings)
    async with db.transaction() as session:
        by_status = await repository.count_by(session, dimension="status")
        by_category = await repository.count_by(session, dimension="category", statuses=ACTIVE)
        by_district = await repository.count_by(session, dimension="district")
        lahore = await repository.count_by(session, dimension="status", district="Lahore")
        overdue = await repository.count_overdue(
            session, now=T0 + dt.timedelta(days=8), statuses=ACTIVE
        )
    assert by_status == {"open": 4, "in_progress": 1, "resolved": 1}
    assert by_category == {
        "deduction_by_agent": 1,
        "payment_not_received": 2,
        "eligibility_dispute": 1,
        "other": 1,
    }
    assert by_district == {"Lahore": 3, "Karachi Central": 2, None: 1}
    assert lahore == {"open": 2, "resolved": 1}
    assert overdue == 3  # deduction (3 days) and both payments (7 days)
