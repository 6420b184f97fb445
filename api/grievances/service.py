"""Filing, tracking and escalating grievances (SPEC §5.3).

Nothing here commits: the caller's transaction does, so a status change, its event and the
notification the caller enqueues through `notify` land together or not at all.

    open ──▶ in_progress ◀──▶ escalated ◀── SLA breach (escalate_overdue), from open or in_progress
      └───────────────────────▶ escalated
    open | in_progress | escalated ──▶ resolved | rejected ──(reopen)──▶ open
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping

from sqlalchemy.ext.asyncio import AsyncSession

from api.grievances import repository
from api.grievances.schemas import (
    ACTIVE_STATUSES,
    ALLOWED_TRANSITIONS,
    CLOSED_STATUSES,
    MAX_DESCRIPTION,
    Action,
    Category,
    Status,
    clean_text,
)
from api.grievances.ticket import new_ticket_id, normalise_ticket_id
from api.identity import Cnic
from api.metrics import GRIEVANCES
from api.registry.models import Grievance, GrievanceEvent

#: Awaited once per recorded change, inside the caller's transaction, after the change is flushed
#: (so `grievance.id` and `event.id` exist). Use it to enqueue the outbox message that tells the
#: owner (or a supervisor): `await outbox.enqueue(session, ..., grievance_id=grievance.id,
#: dedup_key=f"grievance-event:{event.id}")`. If it raises, the caller's transaction should roll
#: back, taking the change with it: a change is never recorded without its notification.
Notify = Callable[[Grievance, GrievanceEvent], Awaitable[None]]

#: Who records automatic changes.
SYSTEM_ACTOR = "system"
SLA_BREACHED_NOTE = "SLA breached"
#: Used only when RABTA_GRIEVANCE_SLA_DAYS is set without an `other` entry (Settings' default).
FALLBACK_SLA_DAYS = 15
#: Fresh ids to try before giving up. The id space is 32⁵ ≈ 33.5 million: at 10 million tickets a
#: random id is taken 30% of the time, and twelve misses in a row happen once in ~2 million filings.
TICKET_ATTEMPTS = 12


class GrievanceError(Exception):
    """Base of the grievance domain's errors."""


class GrievanceNotFound(GrievanceError, LookupError):
    """No grievance has this ticket id (or the text is not a ticket id at all)."""


class TransitionNotAllowed(GrievanceError):
    """The status change is not in ALLOWED_TRANSITIONS."""

    def __init__(self, from_status: str, to_status: str) -> None:
        super().__init__(f"a grievance cannot go from {from_status} to {to_status}")
        self.from_status = from_status
        self.to_status = to_status


class InvalidText(GrievanceError, ValueError):
    """A description or note is empty or longer than MAX_DESCRIPTION after cleaning."""


class UnknownAgent(GrievanceError, LookupError):
    """No active agent has this id."""


def utc(moment: dt.datetime | None) -> dt.datetime:
    """`moment` in UTC (now when None); naive datetimes are refused, not guessed at."""
    if moment is None:
        return dt.datetime.now(dt.UTC)
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass a timezone-aware UTC moment")
    return moment.astimezone(dt.UTC)


def due_at(*, category: str, filed_at: dt.datetime, sla_days: Mapping[str, int]) -> dt.datetime:
    """When a grievance of `category` filed at `filed_at` breaches its SLA (unknown: `other`)."""
    days = sla_days.get(category, sla_days.get(Category.OTHER.value, FALLBACK_SLA_DAYS))
    return filed_at + dt.timedelta(days=days)


def _clean(text: str, *, allow_empty: bool = False) -> str:
    cleaned = clean_text(text)
    if not cleaned and not allow_empty:
        raise InvalidText("empty text")
    if len(cleaned) > MAX_DESCRIPTION:
        raise InvalidText(f"longer than {MAX_DESCRIPTION} characters")
    return cleaned


def _record(
    grievance: Grievance,
    *,
    at: dt.datetime,
    actor: str,
    action: Action,
    from_status: str | None = None,
    to_status: str | None = None,
    note: str | None = None,
) -> GrievanceEvent:
    event = GrievanceEvent(
        at=at,
        actor=actor,
        action=action,
        from_status=from_status,
        to_status=to_status,
        note=note,
    )
    # Appending keeps the loaded `events` collection (and so GrievanceOut) current without a reload.
    grievance.events.append(event)
    grievance.updated_at = at
    return event


async def _load(session: AsyncSession, ticket_id: str) -> Grievance:
    canonical = normalise_ticket_id(ticket_id)
    grievance = (
        await repository.get_by_ticket_id(session, ticket_id=canonical, for_update=True)
        if canonical
        else None
    )
    if grievance is None:
        raise GrievanceNotFound(ticket_id)
    return grievance


async def file_grievance(
    session: AsyncSession,
    *,
    cnic: Cnic,
    category: Category,
    description: str,
    channel: str,
    contact_id: int | None,
    language: str | None,
    filed_by: str | None = None,
    callback_requested: bool = False,
    district: str | None = None,
    sla_days: Mapping[str, int],
    now: dt.datetime | None = None,
    notify: Notify | None = None,
    draft_key: str | None = None,
) -> Grievance:
    """Open a grievance with a fresh ticket id and its `filed` event; raises InvalidText.

    With `draft_key` (a conversation's draft, bot/dialogue/flows/grievance.py), a draft already
    filed for this CNIC is not filed again: that grievance is returned as it is, so the person
    is told the ticket she has (her conversation met its confirmation again, its state left
    unsaved in Redis after the filing)."""
    if draft_key is not None and (earlier := await _filed_draft(session, draft_key, cnic)):
        return earlier
    at = utc(now)
    # USSD intake may carry no text when the owner asked for a call back instead.
    text = _clean(description, allow_empty=callback_requested)
    values = {
        "cnic": cnic.digits,
        "category": Category(category).value,
        "description": text,
        "status": Status.OPEN.value,
        "channel": channel,
        "contact_id": contact_id,
        "language": language,
        "callback_requested": callback_requested,
        "filed_by": filed_by,
        "district": district,
        "created_at": at,
        "updated_at": at,
        "due_at": due_at(category=Category(category).value, filed_at=at, sla_days=sla_days),
        "reopened_count": 0,
        "draft_key": draft_key,
    }
    for _ in range(TICKET_ATTEMPTS):
        grievance = await repository.insert_grievance(
            session, values={**values, "ticket_id": new_ticket_id()}
        )
        if grievance is not None:
            break
        if draft_key is not None and (earlier := await _filed_draft(session, draft_key, cnic)):
            return earlier  # the same draft, filed at the same moment by another message
    else:
        raise GrievanceError("no free ticket id found: the id space is nearly full")
    # Counted here, whichever channel filed it (a message, REST, an agent), and only when filed
    # now: a draft met again gave back its ticket above.
    GRIEVANCES.labels(values["category"], channel).inc()
    event = _record(
        grievance,
        at=at,
        actor=filed_by or channel,
        action=Action.FILED,
        to_status=Status.OPEN,
    )
    await session.flush()
    if notify is not None:
        await notify(grievance, event)
    return grievance


async def _filed_draft(session: AsyncSession, draft_key: str, cnic: Cnic) -> Grievance | None:
    earlier = await repository.get_by_draft_key(session, draft_key=draft_key)
    if earlier is None:
        return None
    if earlier.cnic != cnic.digits:
        # A draft is one conversation's, about one CNIC: never hand out another's ticket.
        raise GrievanceError("a complaint draft was filed for another CNIC")
    return earlier


async def change_status(
    session: AsyncSession,
    *,
    ticket_id: str,
    to: Status,
    actor: str,
    note: str | None,
    sla_days: Mapping[str, int],
    now: dt.datetime | None = None,
    notify: Notify | None = None,
) -> Grievance:
    """Move a grievance to `to` and record it; raises GrievanceNotFound, TransitionNotAllowed.

    Resolving stamps `resolved_at`; escalating stamps `escalated_at`; reopening a resolved or
    rejected grievance counts the reopening, restarts the SLA clock from `now` and clears both
    stamps, which describe the current round only (the events keep the history).
    """
    at = utc(now)
    target = Status(to)
    grievance = await _load(session, ticket_id)
    current = Status(grievance.status)
    if target not in ALLOWED_TRANSITIONS[current]:
        raise TransitionNotAllowed(current, target)
    text = _clean(note) if note is not None and note.strip() else None

    action = Action.STATUS_CHANGED
    if target is Status.RESOLVED:
        grievance.resolved_at = at
    elif target is Status.ESCALATED:
        grievance.escalated_at = at
        action = Action.ESCALATED
    elif current in CLOSED_STATUSES and target is Status.OPEN:
        grievance.reopened_count += 1
        grievance.due_at = due_at(category=grievance.category, filed_at=at, sla_days=sla_days)
        grievance.resolved_at = None
        grievance.escalated_at = None
        action = Action.REOPENED
    grievance.status = target.value
    event = _record(
        grievance,
        at=at,
        actor=actor,
        action=action,
        from_status=current,
        to_status=target,
        note=text,
    )
    await session.flush()
    if notify is not None:
        await notify(grievance, event)
    return grievance


async def add_note(
    session: AsyncSession,
    *,
    ticket_id: str,
    actor: str,
    note: str,
    internal: bool,
    now: dt.datetime | None = None,
    notify: Notify | None = None,
) -> GrievanceEvent:
    """Add a note: `internal` ones stay with staff; others are shown (and, via `notify`, sent)."""
    at = utc(now)
    grievance = await _load(session, ticket_id)
    event = _record(
        grievance,
        at=at,
        actor=actor,
        action=Action.INTERNAL_NOTE if internal else Action.NOTE,
        note=_clean(note),
    )
    await session.flush()
    # Only a visible note is news for the owner; an internal one must never reach them.
    if notify is not None and not internal:
        await notify(grievance, event)
    return event


async def assign(
    session: AsyncSession,
    *,
    ticket_id: str,
    agent_id: int | None,
    actor: str,
    now: dt.datetime | None = None,
) -> Grievance:
    """Assign a grievance to an active agent (None: unassign); recorded as a staff-only event."""
    at = utc(now)
    grievance = await _load(session, ticket_id)
    username = None
    if agent_id is not None:
        agent = await repository.get_agent(session, agent_id=agent_id)
        if agent is None or not agent.active:
            raise UnknownAgent(agent_id)
        username = agent.username
    grievance.assigned_to = agent_id
    _record(grievance, at=at, actor=actor, action=Action.ASSIGNED, note=username)
    await session.flush()
    return grievance


async def escalate_overdue(
    session: AsyncSession,
    *,
    now: dt.datetime,
    limit: int | None = None,
    notify: Notify | None = None,
) -> list[Grievance]:
    """Escalate every open or in-progress grievance past its due time; safe to run in parallel.

    Running it again escalates nothing new. A grievance escalates at most once per SLA round: one
    handed back to in_progress by a supervisor stays there; reopening starts a new round. With
    `limit`, a run takes at most that many (earliest due first), keeping transactions short.
    """
    at = utc(now)
    overdue = await repository.due_for_escalation(
        session, now=at, statuses=[s.value for s in ACTIVE_STATUSES], limit=limit
    )
    for grievance in overdue:
        previous = grievance.status
        grievance.status = Status.ESCALATED.value
        grievance.escalated_at = at
        event = _record(
            grievance,
            at=at,
            actor=SYSTEM_ACTOR,
            action=Action.ESCALATED,
            from_status=previous,
            to_status=Status.ESCALATED,
            note=SLA_BREACHED_NOTE,
        )
        await session.flush()
        if notify is not None:
            await notify(grievance, event)
    return overdue


def _digits(cnic: Cnic | str) -> str:
    # str(Cnic) is the *masked* form, so a Cnic must never be turned into text with str().
    return cnic.digits if isinstance(cnic, Cnic) else cnic


async def get_for_owner(
    session: AsyncSession, *, cnic: Cnic | str, ticket_id: str
) -> Grievance | None:
    """The owner's grievance by ticket id (typed any way); None for a ticket of someone else.

    "Not yours" and "does not exist" are the same None, from the same query, so nobody can
    probe which ticket ids exist.
    """
    canonical = normalise_ticket_id(ticket_id)
    if canonical is None:
        return None
    return await repository.get_for_owner(session, cnic=_digits(cnic), ticket_id=canonical)


async def list_for_owner(session: AsyncSession, *, cnic: Cnic | str) -> list[Grievance]:
    """The owner's grievances with their events, newest first."""
    return await repository.list_by_cnic(session, cnic=_digits(cnic))
