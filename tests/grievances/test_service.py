"""Filing, status changes, reopening, notes, assignment and owner isolation."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools

import pytest
from sqlalchemy import func, select

from api.db import Database
from api.grievances import repository, service
from api.grievances.schemas import ALLOWED_TRANSITIONS, Category, GrievanceOut, Status
from api.grievances.ticket import ticket_id_for
from api.identity import Cnic
from api.registry.models import Agent, Grievance, GrievanceEvent
from api.settings import Settings
from tests.conftest import ELIGIBLE, ELIGIBLE_WIFE
from tests.grievances.conftest import T0, as_utc, change_as_agent, file_one


@pytest.mark.parametrize("category", list(Category))
async def test_file_each_category_with_its_sla(
    db: Database, settings: Settings, category: Category
) -> None:
    async with db.transaction() as session:
        filed = await file_one(session, settings, category=category)
    days = settings.grievance_sla_days[category.value]
    async with db.transaction() as session:
        grievance = await repository.get_by_ticket_id(session, ticket_id=filed.ticket_id)
    assert grievance is not None
    assert grievance.category == category.value
    assert grievance.status == "open"
    assert as_utc(grievance.created_at) == T0
    assert as_utc(grievance.due_at) == T0 + dt.timedelta(days=days)
    assert grievance.reopened_count == 0
    [event] = grievance.events
    assert (event.action, event.actor, event.from_status, event.to_status) == (
        "filed",
        "sms",
        None,
        "open",
    )


async def test_file_records_who_and_where(db: Database, settings: Settings) -> None:
    async with db.transaction() as session:
        grievance = await file_one(
            session,
            settings,
            channel="agent",
            filed_by="agent.lahore1",
            district="Lahore",
            language="ur",
            description="",
            callback_requested=True,
        )
    assert grievance.filed_by == "agent.lahore1"
    assert grievance.district == "Lahore"
    assert grievance.callback_requested
    assert grievance.description == ""
    assert grievance.events[0].actor == "agent.lahore1"


async def test_unknown_sla_category_falls_back_to_other(db: Database, settings: Settings) -> None:
    async with db.transaction() as session:
        grievance = await file_one(session, settings, sla_days={"other": 4})
    assert as_utc(grievance.due_at) == T0 + dt.timedelta(days=4)


@pytest.mark.parametrize("description", ["", "   ", "\x00", "x" * 1001])
async def test_file_refuses_bad_descriptions(
    db: Database, settings: Settings, description: str
) -> None:
    async with db.transaction() as session:
        with pytest.raises(service.InvalidText):
            await file_one(session, settings, description=description)


async def test_file_refuses_naive_now(db: Database, settings: Settings) -> None:
    async with db.transaction() as session:
        with pytest.raises(ValueError, match="naive"):
            await file_one(session, settings, now=dt.datetime(2026, 11, 23))


async def test_ticket_collision_retries(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken, free = ticket_id_for(1234), ticket_id_for(5678)
    draws = iter([taken, taken, taken, free])
    async with db.transaction() as session:
        monkeypatch.setattr(service, "new_ticket_id", lambda: taken)
        first = await file_one(session, settings)
        monkeypatch.setattr(service, "new_ticket_id", lambda: next(draws))
        second = await file_one(session, settings)
    assert (first.ticket_id, second.ticket_id) == (taken, free)


async def test_ticket_space_exhausted(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "new_ticket_id", lambda: ticket_id_for(1))
    async with db.transaction() as session:
        await file_one(session, settings)
        with pytest.raises(service.GrievanceError, match="no free ticket id"):
            await file_one(session, settings)


async def _put_in(db: Database, settings: Settings, status: Status) -> str:
    """A grievance already in `status` (set directly: the path there is tested elsewhere)."""
    async with db.transaction() as session:
        grievance = await file_one(session, settings)
        grievance.status = status.value
    return grievance.ticket_id


@pytest.mark.parametrize(
    ("start", "target"),
    list(itertools.product(Status, Status)),
    ids=lambda s: s.value,
)
async def test_every_transition(
    db: Database, settings: Settings, start: Status, target: Status
) -> None:
    ticket_id = await _put_in(db, settings, start)
    later = T0 + dt.timedelta(hours=1)
    async with db.transaction() as session:
        if target not in ALLOWED_TRANSITIONS[start]:
            with pytest.raises(service.TransitionNotAllowed) as refused:
                await service.change_status(
                    session,
                    ticket_id=ticket_id,
                    to=target,
                    actor="agent1",
                    note=None,
                    sla_days=settings.grievance_sla_days,
                    now=later,
                )
            assert (refused.value.from_status, refused.value.to_status) == (start, target)
            return
        grievance = await service.change_status(
            session,
            ticket_id=ticket_id,
            to=target,
            actor="agent1",
            note="checked with the bank",
            sla_days=settings.grievance_sla_days,
            now=later,
        )
    assert grievance.status == target.value
    event = grievance.events[-1]
    assert (event.actor, event.from_status, event.to_status, event.note) == (
        "agent1",
        start.value,
        target.value,
        "checked with the bank",
    )
    assert as_utc(grievance.updated_at) == later
    assert (grievance.resolved_at is not None) is (target is Status.RESOLVED)
    assert (grievance.escalated_at is not None) is (target is Status.ESCALATED)
    expected_action = {Status.ESCALATED: "escalated", Status.OPEN: "reopened"}
    assert event.action == expected_action.get(target, "status_changed")


async def test_refused_transition_changes_nothing(db: Database, settings: Settings) -> None:
    ticket_id = await _put_in(db, settings, Status.RESOLVED)
    async with db.transaction() as session:
        with pytest.raises(service.TransitionNotAllowed):
            await change_as_agent(session, settings, ticket_id, Status.IN_PROGRESS)
    async with db.transaction() as session:
        grievance = await repository.get_by_ticket_id(session, ticket_id=ticket_id)
    assert grievance is not None and grievance.status == "resolved"
    assert [e.action for e in grievance.events] == ["filed"]


async def test_change_status_of_unknown_ticket(db: Database, settings: Settings) -> None:
    async with db.transaction() as session:
        for ticket_id in ("G-7K3M9Q", "not a ticket"):
            with pytest.raises(service.GrievanceNotFound):
                await service.change_status(
                    session,
                    ticket_id=ticket_id,
                    to=Status.RESOLVED,
                    actor="agent1",
                    note=None,
                    sla_days=settings.grievance_sla_days,
                )


async def test_change_status_accepts_ticket_as_typed(db: Database, settings: Settings) -> None:
    async with db.transaction() as session:
        grievance = await file_one(session, settings)
        typed = grievance.ticket_id.lower().replace("-", " ")
        await change_as_agent(session, settings, typed, Status.IN_PROGRESS)
    assert grievance.status == "in_progress"


async def test_resolve_then_reopen_restarts_the_clock(db: Database, settings: Settings) -> None:
    sla = settings.grievance_sla_days
    resolved_at, reopened_at = T0 + dt.timedelta(days=2), T0 + dt.timedelta(days=20)
    async with db.transaction() as session:
        grievance = await file_one(session, settings, category=Category.DEDUCTION_BY_AGENT)
        ticket_id = grievance.ticket_id
        await service.change_status(
            session,
            ticket_id=ticket_id,
            to=Status.RESOLVED,
            actor="agent1",
            note="Refund arranged",
            sla_days=sla,
            now=resolved_at,
        )
        assert as_utc(grievance.resolved_at) == resolved_at
        await service.change_status(
            session,
            ticket_id=ticket_id,
            to=Status.OPEN,
            actor="sms",
            note="Refund never came",
            sla_days=sla,
            now=reopened_at,
        )
    async with db.transaction() as session:
        stored = await repository.get_by_ticket_id(session, ticket_id=ticket_id)
    assert stored is not None
    assert stored.status == "open"
    assert stored.reopened_count == 1
    assert stored.resolved_at is None
    assert as_utc(stored.due_at) == reopened_at + dt.timedelta(days=sla["deduction_by_agent"])
    assert [(e.action, e.from_status, e.to_status) for e in stored.events] == [
        ("filed", None, "open"),
        ("status_changed", "open", "resolved"),
        ("reopened", "resolved", "open"),
    ]


async def test_reject_reopen_twice_counts(db: Database, settings: Settings) -> None:
    async with db.transaction() as session:
        grievance = await file_one(session, settings)
        for target in (Status.REJECTED, Status.OPEN, Status.REJECTED, Status.OPEN):
            await change_as_agent(session, settings, grievance.ticket_id, target)
    assert grievance.reopened_count == 2


async def test_notes_internal_and_visible(db: Database, settings: Settings) -> None:
    notified: list[str] = []

    async def notify(grievance: Grievance, event: GrievanceEvent) -> None:
        notified.append(event.action)

    async with db.transaction() as session:
        grievance = await file_one(session, settings)
        ticket_id = grievance.ticket_id
        await service.add_note(
            session,
            ticket_id=ticket_id,
            actor="agent1",
            note="Retailer Ichhra has 3 similar complaints",
            internal=True,
            now=T0,
            notify=notify,
        )
        await service.add_note(
            session,
            ticket_id=ticket_id,
            actor="agent1",
            note="Please visit the tehsil office with your CNIC",
            internal=False,
            now=T0,
            notify=notify,
        )
        with pytest.raises(service.InvalidText):
            await service.add_note(
                session, ticket_id=ticket_id, actor="agent1", note=" ", internal=False
            )
    assert notified == ["note"]  # the internal note never reaches the owner
    async with db.transaction() as session:
        stored = await service.get_for_owner(session, cnic=ELIGIBLE_WIFE, ticket_id=ticket_id)
    assert stored is not None
    assert [e.action for e in stored.events] == ["filed", "internal_note", "note"]
    assert stored.status == "open"
    out = GrievanceOut.from_grievance(stored)
    assert [e.note for e in out.events] == [None, "Please visit the tehsil office with your CNIC"]


async def test_assign(db: Database, settings: Settings) -> None:
    async with db.transaction() as session:
        session.add_all(
            [
                Agent(id=7, username="agent.lahore1", password_hash="x", role="agent"),
                Agent(id=8, username="gone", password_hash="x", role="agent", active=False),
            ]
        )
        grievance = await file_one(session, settings)
        ticket_id = grievance.ticket_id
        await service.assign(session, ticket_id=ticket_id, agent_id=7, actor="supervisor1", now=T0)
        assert grievance.assigned_to == 7
        for bad in (8, 99):
            with pytest.raises(service.UnknownAgent):
                await service.assign(session, ticket_id=ticket_id, agent_id=bad, actor="s")
        await service.assign(session, ticket_id=ticket_id, agent_id=None, actor="supervisor1")
        assert grievance.assigned_to is None
    assert [(e.action, e.note) for e in grievance.events[1:]] == [
        ("assigned", "agent.lahore1"),
        ("assigned", None),
    ]
    assert [e.action for e in GrievanceOut.from_grievance(grievance).events] == ["filed"]


async def test_owner_isolation(db: Database, settings: Settings) -> None:
    async with db.transaction() as session:
        wifes = await file_one(session, settings)
        husbands = await file_one(session, settings, cnic=Cnic.parse(ELIGIBLE), now=T0)
    async with db.transaction() as session:
        own = await service.get_for_owner(
            session, cnic=Cnic.parse(ELIGIBLE_WIFE), ticket_id=wifes.ticket_id.lower()
        )
        other = await service.get_for_owner(session, cnic=ELIGIBLE, ticket_id=wifes.ticket_id)
        missing = await service.get_for_owner(session, cnic=ELIGIBLE, ticket_id="G-7K3M9Q")
        garbage = await service.get_for_owner(session, cnic=ELIGIBLE, ticket_id="'; --")
        listed = await service.list_for_owner(session, cnic=ELIGIBLE)
    assert own is not None and own.ticket_id == wifes.ticket_id
    # Someone else's ticket looks exactly like one that does not exist.
    assert other is None and missing is None and garbage is None
    assert [g.ticket_id for g in listed] == [husbands.ticket_id]


async def test_list_for_owner_newest_first_with_events(db: Database, settings: Settings) -> None:
    async with db.transaction() as session:
        for day in range(3):
            await file_one(session, settings, now=T0 + dt.timedelta(days=day))
    async with db.transaction() as session:
        listed = await service.list_for_owner(session, cnic=Cnic.parse(ELIGIBLE_WIFE))
    created = [g.created_at for g in listed]  # all naive (SQLite) or all aware (PostgreSQL)
    assert created == sorted(created, reverse=True) and len(created) == 3
    assert all(len(GrievanceOut.from_grievance(g).events) == 1 for g in listed)


async def test_never_commits(db: Database, settings: Settings) -> None:
    async with db.sessions() as session:
        await file_one(session, settings)
        await session.rollback()
    async with db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(Grievance)) == 0


async def test_a_draft_is_filed_once_even_by_two_messages_at_once(
    db: Database, settings: Settings
) -> None:
    """Two confirmations of one conversation's draft in two transactions at once (the second
    waits on the first's unique key, then finds its grievance): one grievance, one ticket."""
    first_in = asyncio.Event()

    async def confirm(wait: bool) -> str:
        async with db.transaction() as session:
            if wait:
                await first_in.wait()
            grievance = await file_one(session, settings, draft_key="d" * 32)
            if not wait:
                first_in.set()
                await asyncio.sleep(0.3)  # still uncommitted while the other inserts
            return grievance.ticket_id

    tickets = await asyncio.gather(confirm(False), confirm(True))
    assert tickets[0] == tickets[1]
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Grievance)) == 1
    async with db.transaction() as session:
        again = await file_one(session, settings, draft_key="d" * 32)
        other = await file_one(session, settings, draft_key="e" * 32)
    assert again.ticket_id == tickets[0] != other.ticket_id


async def test_a_draft_filed_for_one_cnic_gives_no_ticket_to_another(
    db: Database, settings: Settings
) -> None:
    async with db.transaction() as session:
        await file_one(session, settings, draft_key="f" * 32)
    async with db.transaction() as session:
        with pytest.raises(service.GrievanceError, match="another CNIC"):
            await file_one(session, settings, cnic=Cnic.parse(ELIGIBLE), draft_key="f" * 32)


async def test_every_grievance_filed_is_counted_once_whichever_channel(
    db: Database, settings: Settings
) -> None:
    """`rabta_grievances_filed_total` counted only what the messaging channels filed: a
    grievance filed over REST or by an agent for a caller was never counted, and a draft met
    again (its ticket given back) was counted once more."""
    from prometheus_client import REGISTRY

    def filed(channel: str) -> float:
        labels = {"category": Category.PAYMENT_NOT_RECEIVED.value, "channel": channel}
        return REGISTRY.get_sample_value("rabta_grievances_filed_total", labels) or 0.0

    before = {channel: filed(channel) for channel in ("api", "agent", "sms")}
    async with db.transaction() as session:
        await file_one(session, settings, channel="api")
        await file_one(session, settings, channel="agent", filed_by="amina")
        await file_one(session, settings, draft_key="g" * 32)
    async with db.transaction() as session:
        await file_one(session, settings, draft_key="g" * 32)
    after = {channel: filed(channel) for channel in ("api", "agent", "sms")}
    assert {k: after[k] - before[k] for k in after} == {"api": 1, "agent": 1, "sms": 1}
