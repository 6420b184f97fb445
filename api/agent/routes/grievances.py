"""The grievance queue: views (open, escalated, past SLA, mine, unassigned), a grievance's page,
notes, status changes (supervisors; agents may only escalate), assignment, escalating overdue."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from api.agent import audit
from api.agent import repository as agents
from api.agent.deps import (
    ConsoleDbDep,
    CsrfChecked,
    CurrentStaff,
    SessionsDep,
    SupervisorStaff,
)
from api.agent.errors import ConsoleError
from api.agent.i18n import N_
from api.agent.pages import COUNT_CAP, Seek, page
from api.agent.schemas import AuditAction, RecordType, Role
from api.agent.sessions import Flash, Forms
from api.db import utc
from api.deps import RuntimeDep, SettingsDep
from api.grievances import repository, service
from api.grievances.notify import owner_notifier
from api.grievances.repository import QueueFilter
from api.grievances.schemas import ALLOWED_TRANSITIONS, Category, Status, clean_text
from api.grievances.ticket import normalise_ticket_id
from api.identity import mask_cnic
from api.outbox.service import OptedOutBy

router = APIRouter(prefix="/agent")

PAGE_SIZE = 50
WORKED = (Status.OPEN.value, Status.IN_PROGRESS.value, Status.ESCALATED.value)
CLOSED = (Status.RESOLVED.value, Status.REJECTED.value)
#: The most of a note the caller's SMS carries: the `grievance/update` and `grievance/status`
#: messages cut a note at 80 characters, so the console takes no longer note for the caller
#: rather than let her get a cut sentence the agent never saw. Internal notes keep 1000.
CALLER_NOTE_MAX = 80


@dataclass(frozen=True)
class QueueView:
    """A tab of the queue: its name in the catalog and the filter behind it."""

    name: str
    title: str


VIEWS = (
    QueueView("open", N_("Open")),
    QueueView("escalated", N_("Escalated")),
    QueueView("breached", N_("Past SLA")),
    QueueView("mine", N_("Assigned to me")),
    QueueView("unassigned", N_("Unassigned")),
    QueueView("closed", N_("Closed")),
)


def _filter(view: str, *, staff_id: int, now: dt.datetime) -> QueueFilter:
    filters = {
        "open": QueueFilter(statuses=WORKED),
        "escalated": QueueFilter(statuses=(Status.ESCALATED.value,)),
        "breached": QueueFilter(statuses=WORKED, overdue_at=now),
        "mine": QueueFilter(statuses=WORKED, assigned_to=staff_id),
        "unassigned": QueueFilter(statuses=WORKED, unassigned=True),
        "closed": QueueFilter(statuses=CLOSED),
    }
    return filters[view]


@router.get("/grievances")
async def queue(
    request: Request,
    staff: CurrentStaff,
    db: ConsoleDbDep,
    view: str = "open",
    district: str | None = None,
    category: str | None = None,
    after: str | None = None,
    before: str | None = None,
) -> Response:
    """One tab of the queue, most urgent (earliest due) first. A page links to the next and
    the previous by where it ends and starts (`after`, `before`: a `Cursor`), not by number:
    grievances closed meanwhile move no other from one page to another."""
    view = view if view in {v.name for v in VIEWS} else "open"
    now = dt.datetime.now(dt.UTC)
    district = (district or "").strip()
    known = category if category in {c.value for c in Category} else None

    def where(name: str) -> QueueFilter:
        tab = _filter(name, staff_id=staff.id, now=now)
        return replace(tab, district=district or None, category=known)

    counts = {v.name: await repository.count_queue(db, where(v.name), cap=COUNT_CAP) for v in VIEWS}
    shown = await agents.queue_page(db, where(view), seek=Seek.of(after, before), limit=PAGE_SIZE)
    names = await agents.usernames_by_id(
        db, ids={g.assigned_to for g in shown.rows if g.assigned_to is not None}
    )
    base = {k: v for k, v in (("district", district), ("category", category)) if v}
    return await page(
        request,
        "grievances.html",
        staff=staff,
        title=N_("Grievances"),
        views=VIEWS,
        view=view,
        counts=counts,
        rows=shown.rows,
        assignee=names,
        now=now,
        utc=utc,
        district=district or "",
        category=known or "",
        categories=[c.value for c in Category],
        **shown.links(
            lambda place: "/agent/grievances?" + urlencode({**base, "view": view, **place})
        ),
        tab_link=lambda name: "/agent/grievances?" + urlencode({**base, "view": name}),
    )


#: Events that set a grievance's status, and the one that sets its assignee: a status or assign
#: form carries the id of the last such event its page showed (`seen`), so a change made from a
#: page someone else has overtaken is refused instead of silently overwriting theirs.
STATUS_EVENTS = frozenset({"filed", "status_changed", "escalated", "reopened"})
ASSIGN_EVENTS = frozenset({"assigned"})


def _last_event(grievance: Any, actions: frozenset[str]) -> Any:
    return next((e for e in reversed(grievance.events) if e.action in actions), None)


def _seen(grievance: Any, actions: frozenset[str]) -> str:
    """What a form says its page showed: the id of the last event of `actions` (0: none)."""
    last = _last_event(grievance, actions)
    return str(last.id) if last is not None else "0"


def _last_seen(grievance: Any) -> str:
    """What a note form says its page showed: the id of the grievance's last event (0: none)."""
    return str(grievance.events[-1].id) if grievance.events else "0"


def _sent_again(grievance: Any, seen: str, *, actor: str, internal: bool, note: str) -> Any:
    """The note a note form added already, when the form is sent again (a double click, a post
    sent again): one of the same kind and words by the same member of staff, recorded after
    the last event the form's page showed (`seen`). None for a form without `seen`."""
    if not (seen.isascii() and seen.isdigit()):
        return None
    action = "internal_note" if internal else "note"
    words = clean_text(note)
    return next(
        (
            e
            for e in grievance.events
            if e.id > int(seen) and e.action == action and e.actor == actor and e.note == words
        ),
        None,
    )


def _overtaken(grievance: Any, actions: frozenset[str], seen: str) -> Any:
    """The event someone else recorded since the form's page was shown, or None. A post without
    `seen` (no page behind it) is not checked: the transitions table still guards it."""
    if not seen or seen == _seen(grievance, actions):
        return None
    return _last_event(grievance, actions)


async def _grievance_or_404(db: ConsoleDbDep, ticket_id: str, *, lock: bool = False) -> Any:
    canonical = normalise_ticket_id(ticket_id)
    grievance = (
        await repository.get_by_ticket_id(db, ticket_id=canonical, for_update=lock)
        if canonical
        else None
    )
    if grievance is None:
        raise ConsoleError(
            404, N_("No grievance has the ticket number %(ticket)s."), ticket=ticket_id
        )
    return grievance


@router.get("/grievances/{ticket_id}")
async def grievance_page(
    request: Request, ticket_id: str, staff: CurrentStaff, db: ConsoleDbDep
) -> Response:
    """A grievance with its whole history, staff notes included (an audited view)."""
    grievance = await _grievance_or_404(db, ticket_id)
    if grievance.ticket_id != ticket_id:
        return RedirectResponse(f"/agent/grievances/{grievance.ticket_id}", status_code=303)
    await audit.record(
        db,
        actor=staff.username,
        action=AuditAction.VIEW,
        record_type=RecordType.GRIEVANCE,
        record_id=grievance.ticket_id,
        reason="grievance page",
        client_ip=audit.client_ip(request),
    )
    now = dt.datetime.now(dt.UTC)
    current = Status(grievance.status)
    allowed = sorted(ALLOWED_TRANSITIONS[current], key=lambda s: list(Status).index(s))
    staff_list = await agents.list_agents(db) if staff.can(Role.SUPERVISOR) else []
    assignee = (
        (await agents.usernames_by_id(db, ids={grievance.assigned_to})).get(grievance.assigned_to)
        if grievance.assigned_to is not None
        else None
    )
    can_escalate = Status.ESCALATED in ALLOWED_TRANSITIONS[current]
    # A supervisor's status form or an agent's escalation form, when the page shows either.
    status_form = ("status",) if staff.can(Role.SUPERVISOR) or can_escalate else ()
    return await page(
        request,
        "grievance.html",
        staff=staff,
        forms=Forms.on(_page_of(grievance), "note", "caller-note", *status_form),
        title=N_("Grievance"),
        g=grievance,
        cnic_masked=mask_cnic(grievance.cnic),
        overdue=current.value in WORKED and utc(grievance.due_at) < now,
        allowed=[s.value for s in allowed],
        can_escalate=can_escalate,
        is_supervisor=staff.can(Role.SUPERVISOR),
        staff_list=staff_list,
        assignee=assignee,
        caller_note_max=CALLER_NOTE_MAX,
        status_seen=_seen(grievance, STATUS_EVENTS),
        note_seen=_last_seen(grievance),
        assign_seen=_seen(grievance, ASSIGN_EVENTS),
    )


def _page_of(grievance: Any) -> str:
    """A grievance's page: where its forms are, and their refused words come back."""
    return f"/agent/grievances/{grievance.ticket_id}"


def _back(ticket_id: str) -> RedirectResponse:
    return RedirectResponse(f"/agent/grievances/{ticket_id}", status_code=303)


def _too_long_for_sms(note: str, *, kept: dict[str, str], page: str, field: str) -> Flash | None:
    """The refusal of a note for the caller that her SMS could not carry whole (giving the form
    on `page` back what was `kept` of it, to be shortened, and saying so at its box `field`),
    else None."""
    length = len(clean_text(note))
    if length <= CALLER_NOTE_MAX:
        return None
    message = N_(
        "The caller gets notes by SMS, which carries at most %(count)s characters of a note; "
        "this one has %(length)s. Shorten it, or write the rest as an internal note."
    )
    args = {"count": CALLER_NOTE_MAX, "length": length}
    return Flash("error", message, args, kept=kept, page=page, field=field)


@router.post("/grievances/{ticket_id}/notes", dependencies=[CsrfChecked])
async def add_note(
    request: Request,
    ticket_id: str,
    staff: CurrentStaff,
    db: ConsoleDbDep,
    sessions: SessionsDep,
    runtime: RuntimeDep,
    note: Annotated[str, Form()] = "",
    internal: Annotated[str, Form()] = "",
    seen: Annotated[str, Form()] = "",
) -> Response:
    """A note: internal ones stay with staff; the others are sent to the caller. The same form
    sent again adds nothing (nor sends the caller a second SMS), and says what the first did."""
    # Locked from here to the commit: the same form sent twice at once is checked in turn.
    grievance = await _grievance_or_404(db, ticket_id, lock=True)
    staff_only = bool(internal)
    added = _sent_again(grievance, seen, actor=staff.username, internal=staff_only, note=note)
    if added is not None:
        earlier = None if staff_only else await agents.note_delivery(db, event_id=added.id)
        await sessions.flash(staff.session, _note_flash(earlier))
        return _back(grievance.ticket_id)
    kept = {"note" if staff_only else "caller-note": note} if note.strip() else {}
    refusal = (
        None
        if staff_only
        else _too_long_for_sms(note, kept=kept, page=_page_of(grievance), field="caller-note")
    )
    if refusal is not None:
        await sessions.flash(staff.session, refusal)
        return _back(grievance.ticket_id)
    try:
        event = await service.add_note(
            db,
            ticket_id=grievance.ticket_id,
            actor=staff.username,
            note=note,
            internal=staff_only,
            notify=owner_notifier(runtime, db),
        )
    except service.InvalidText:
        await sessions.flash(
            staff.session,
            Flash(
                "error",
                N_("Write the note (at most 1000 characters)."),
                {},
                kept=kept,
                page=_page_of(grievance),
                field="note" if staff_only else "caller-note",
            ),
        )
        return _back(grievance.ticket_id)
    delivery = None if staff_only else await agents.note_delivery(db, event_id=event.id)
    await audit.record(
        db,
        actor=staff.username,
        action=AuditAction.ADD_NOTE,
        record_type=RecordType.GRIEVANCE,
        record_id=grievance.ticket_id,
        reason=_note_reason(delivery),
        client_ip=audit.client_ip(request),
    )
    await sessions.flash(staff.session, _note_flash(delivery))
    return _back(grievance.ticket_id)


def _note_reason(delivery: agents.NoteDelivery | None) -> str:
    """How the audit log describes a note: where it went, if it went anywhere."""
    if delivery is None:
        return "internal note"
    if not delivery.queued:
        return "note for the caller, not sent: no contact or registered mobile"
    if delivery.opted_out:
        return f"note for the caller, not sent: opted out of {delivery.channel}"
    return f"note queued to the caller by {delivery.channel}"


#: What the console says of a note the worker will not send, by why its recipient is opted out.
_NOT_SENT = {
    OptedOutBy.STOP: N_(
        "Note added, but not sent: the caller has stopped messages on %(channel)s "
        "(STOP). Tell her by phone."
    ),
    OptedOutBy.CARRIER: N_(
        "Note added, but not sent: the caller told her mobile company to stop messages on "
        "%(channel)s (STOP to the carrier). Tell her by phone."
    ),
    OptedOutBy.BLOCKED: N_(
        "Note added, but not sent: the caller has blocked Rabta on %(channel)s. Tell her by phone."
    ),
}


def _note_flash(delivery: agents.NoteDelivery | None) -> Flash:
    """What the console says happened to a note: sent nowhere is never called sent."""
    if delivery is None:
        return Flash("ok", N_("Internal note added."), {})
    if not delivery.queued:
        message = N_(
            "Note added, but not sent: the caller has no registered mobile or chat to send it "
            "to. Tell her by phone."
        )
        return Flash("error", message, {})
    if delivery.opted_out_by is not None:
        message = _NOT_SENT[delivery.opted_out_by]
        return Flash("error", message, {"channel": delivery.channel}, labels={"channel": "channel"})
    message = N_("Note added. It goes to the caller by %(channel)s.")
    return Flash("ok", message, {"channel": delivery.channel}, labels={"channel": "channel"})


@router.post("/grievances/{ticket_id}/status", dependencies=[CsrfChecked])
async def change_status(
    request: Request,
    ticket_id: str,
    staff: CurrentStaff,
    db: ConsoleDbDep,
    sessions: SessionsDep,
    runtime: RuntimeDep,
    settings: SettingsDep,
    to: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    seen: Annotated[str, Form()] = "",
) -> Response:
    """Move a grievance on. Supervisors make any allowed change; an agent may only escalate it
    to the supervisors' queue, saying why. Refused when someone else changed its status since
    the form's page was shown (two supervisors on one grievance)."""
    # Locked from here to the commit: two posts at once are checked one after the other.
    grievance = await _grievance_or_404(db, ticket_id, lock=True)
    try:
        target = Status(to)
    except ValueError:
        raise ConsoleError(422, N_("Choose the new status.")) from None
    escalating = target is Status.ESCALATED
    if not staff.can(Role.SUPERVISOR) and not escalating:
        raise ConsoleError(403, N_("Only supervisors change a grievance's status."))
    # A refusal gives the note back to the form it was typed in: a supervisor's, or the
    # escalation form an agent sees.
    note_box = "status-note" if staff.can(Role.SUPERVISOR) else "escalate-note"
    kept = {note_box: note} if note.strip() else {}
    overtaken = _overtaken(grievance, STATUS_EVENTS, seen)
    if overtaken is not None:
        message = (
            N_(
                "This grievance is already %(status)s: the form was sent twice; nothing "
                "more changed."
            )
            if overtaken.actor == staff.username
            else N_(
                "%(actor)s changed this grievance to %(status)s while you had it open, so your "
                "change was not made. Read its history, then choose again."
            )
        )
        await sessions.flash(
            staff.session,
            Flash(
                "error",
                message,
                {"actor": overtaken.actor, "status": grievance.status},
                labels={"status": "status"},
                kept=kept,
                page=_page_of(grievance),
            ),
        )
        return _back(grievance.ticket_id)
    if escalating and not note.strip():
        await sessions.flash(
            staff.session,
            Flash("error", N_("Say why the grievance is escalated."), {}, field=note_box),
        )
        return _back(grievance.ticket_id)
    previous = grievance.status
    # An agent's reason for escalating is for the supervisors: kept as an internal note, so the
    # caller's SMS says the grievance was escalated and nothing of the staff's discussion.
    reason_only = escalating and not staff.can(Role.SUPERVISOR)
    refusal = (
        None
        if reason_only
        else _too_long_for_sms(note, kept=kept, page=_page_of(grievance), field=note_box)
    )
    if refusal is not None:
        await sessions.flash(staff.session, refusal)
        return _back(grievance.ticket_id)
    try:
        await service.change_status(
            db,
            ticket_id=grievance.ticket_id,
            to=target,
            actor=staff.username,
            note=None if reason_only else note,
            sla_days=settings.grievance_sla_days,
            notify=owner_notifier(runtime, db),
        )
        if reason_only:
            await service.add_note(
                db, ticket_id=grievance.ticket_id, actor=staff.username, note=note, internal=True
            )
    except service.TransitionNotAllowed:
        await sessions.flash(
            staff.session,
            Flash(
                "error",
                N_("A grievance cannot go from %(from)s to %(to)s."),
                {"from": previous, "to": target.value},
                labels={"from": "status", "to": "status"},
                kept=kept,
                page=_page_of(grievance),
                field="to",
            ),
        )
        return _back(grievance.ticket_id)
    except service.InvalidText:
        await sessions.flash(
            staff.session,
            Flash(
                "error",
                N_("Write the note (at most 1000 characters)."),
                {},
                kept=kept,
                page=_page_of(grievance),
                field=note_box,
            ),
        )
        return _back(grievance.ticket_id)
    await audit.record(
        db,
        actor=staff.username,
        action=AuditAction.CHANGE_STATUS,
        record_type=RecordType.GRIEVANCE,
        record_id=grievance.ticket_id,
        reason=f"{previous} -> {target.value}" + (f": {note.strip()}" if note.strip() else ""),
        client_ip=audit.client_ip(request),
    )
    await sessions.flash(staff.session, Flash("ok", N_("Status changed."), {}))
    return _back(grievance.ticket_id)


#: The largest id the agents table holds (a 32-bit integer column).
MAX_AGENT_ID = 2**31 - 1


def _assignee(chosen: str) -> int | None:
    """The member of staff an assign form chose (None: "Nobody"); UnknownAgent for anything
    the form's list cannot send (another digit script, past the column's range, not a number),
    rather than an error or the grievance taken from its assignee."""
    if not chosen:
        return None
    if chosen.isascii() and chosen.isdigit() and int(chosen) <= MAX_AGENT_ID:
        return int(chosen)
    raise service.UnknownAgent(chosen)


@router.post("/grievances/{ticket_id}/assign", dependencies=[CsrfChecked])
async def assign(
    request: Request,
    ticket_id: str,
    staff: SupervisorStaff,
    db: ConsoleDbDep,
    sessions: SessionsDep,
    agent_id: Annotated[str, Form()] = "",
    seen: Annotated[str, Form()] = "",
) -> Response:
    """Give a grievance to an agent (or take it back: an empty choice); refused when someone
    else assigned it since the form's page was shown."""
    grievance = await _grievance_or_404(db, ticket_id, lock=True)
    overtaken = _overtaken(grievance, ASSIGN_EVENTS, seen)
    if overtaken is not None:
        message = N_(
            "%(actor)s assigned this grievance to %(name)s while you had it open, so your "
            "choice was not saved. Choose again."
        )
        await sessions.flash(
            staff.session,
            Flash(
                "error",
                message,
                {"actor": overtaken.actor, "name": overtaken.note},
                labels={"name": "assignee"},
            ),
        )
        return _back(grievance.ticket_id)
    try:
        chosen = _assignee(agent_id)
        await service.assign(
            db, ticket_id=grievance.ticket_id, agent_id=chosen, actor=staff.username
        )
    except service.UnknownAgent:
        await sessions.flash(
            staff.session,
            Flash(
                "error", N_("That member of staff cannot take grievances."), {}, field="agent_id"
            ),
        )
        return _back(grievance.ticket_id)
    name = (await agents.usernames_by_id(db, ids={chosen})).get(chosen) if chosen else None
    await audit.record(
        db,
        actor=staff.username,
        action=AuditAction.ASSIGN,
        record_type=RecordType.GRIEVANCE,
        record_id=grievance.ticket_id,
        reason=f"assigned to {name}" if name else "unassigned",
        client_ip=audit.client_ip(request),
    )
    await sessions.flash(
        staff.session,
        Flash("ok", N_("Assigned to %(name)s.") if name else N_("Unassigned."), {"name": name}),
    )
    return _back(grievance.ticket_id)


@router.post("/grievances-escalate-overdue", dependencies=[CsrfChecked])
async def escalate_overdue(
    request: Request,
    staff: SupervisorStaff,
    db: ConsoleDbDep,
    sessions: SessionsDep,
    runtime: RuntimeDep,
) -> Response:
    """Escalate every grievance past its SLA now, instead of waiting for the next scheduled run."""
    escalated = await service.escalate_overdue(
        db, now=dt.datetime.now(dt.UTC), limit=500, notify=owner_notifier(runtime, db)
    )
    await audit.record(
        db,
        actor=staff.username,
        action=AuditAction.ESCALATE_OVERDUE,
        record_type=RecordType.GRIEVANCE,
        record_id=f"{len(escalated)} grievances",
        reason=", ".join(g.ticket_id for g in escalated)[:1000] or None,
        client_ip=audit.client_ip(request),
    )
    await sessions.flash(
        staff.session,
        Flash("ok", N_("%(count)s overdue grievances escalated."), {"count": len(escalated)}),
    )
    return RedirectResponse("/agent/grievances?view=escalated", status_code=303)
