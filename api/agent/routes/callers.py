"""The caller flow: search a CNIC (coarse status), verify the caller with a code sent to the
registered mobile or an override with a reason, then the record; file a grievance for her.

Every step is audited. The CNIC lives in the lookup on the server, never in a URL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse, Response

from api.agent import audit, repository
from api.agent.access import GRANT_SECONDS, Lookup
from api.agent.deps import (
    AccessDep,
    ConsoleDbDep,
    CsrfChecked,
    CurrentStaff,
    SessionsDep,
    Staff,
    SupervisorStaff,
)
from api.agent.errors import ConsoleError
from api.agent.i18n import N_, pakistan_today
from api.agent.pages import page
from api.agent.routes.grievances import WORKED
from api.agent.schemas import AuditAction, RecordType, Role
from api.agent.sessions import Flash, Forms
from api.db import utc
from api.deps import RegistrySessionDep, RuntimeDep, SettingsDep
from api.eligibility.schemas import EligibilityResult, EligibilityStatus
from api.eligibility.service import check_eligibility
from api.grievances import service as grievances
from api.grievances.notify import owner_notifier
from api.grievances.schemas import Category, clean_text
from api.identity import Cnic, InvalidCnic, mask_phone, normalise_text
from api.otp.service import CheckOutcome, IssueOutcome, OtpUnavailable
from api.payments.schemas import Tranche
from api.payments.service import list_payments, next_to_collect
from api.registry import repository as registry_repository
from api.registry.models import Grievance, GrievanceEvent, Household, Person
from api.settings import LANGUAGES as CALLER_LANGUAGES
from api.verification import deliver_code, request_code

router = APIRouter(prefix="/agent")

#: A reason for an override must say something (a ticket number, "caller's phone is lost").
MIN_REASON = 10
MAX_REASON = 500


@dataclass(frozen=True)
class CallerRecord:
    """What a verified caller's record shows."""

    person: Person
    household: Household
    members: list[Person]
    eligibility: EligibilityResult
    payments: list[Tranche]
    next_payment: Tranche | None
    grievances: list[Grievance]
    #: Tickets still worked on and past their due time: what an angry caller is ringing about.
    overdue: frozenset[str]


async def _load_record(
    registry: AsyncSession, db: AsyncSession, *, cnic: Cnic, cutoff: float
) -> CallerRecord | None:
    found = await registry_repository.get_person_and_household(registry, cnic=cnic.digits)
    if found is None:
        return None
    person, household = found
    payments = await list_payments(registry, cnic=cnic.digits)
    owned = await grievances.list_for_owner(db, cnic=cnic)
    now = dt.datetime.now(dt.UTC)
    return CallerRecord(
        person=person,
        household=household,
        members=[
            m
            for m in await repository.list_household_members(
                registry, household_id=household.household_id
            )
            if m.cnic != cnic.digits
        ],
        eligibility=await check_eligibility(registry, cnic=cnic, cutoff=cutoff, full=True),
        payments=payments,
        # Badged "Next" in the table, which lists every tranche: none when all are collected.
        # A window that closed yesterday in Pakistan is behind her, whatever the UTC date says.
        next_payment=next_to_collect(payments, today=pakistan_today()),
        grievances=owned,
        overdue=frozenset(g.ticket_id for g in owned if g.status in WORKED and utc(g.due_at) < now),
    )


async def _lookup(access: AccessDep, staff: Staff, lookup_id: str) -> Lookup:
    lookup = await access.get_lookup(lookup_id, agent=staff.username)
    if lookup is None:
        raise ConsoleError(
            404, N_("This call has ended or was opened by someone else. Search the CNIC again.")
        )
    return lookup


def _page_of(lookup: Lookup) -> str:
    return f"/agent/callers/{lookup.id}"


def _back(lookup: Lookup) -> RedirectResponse:
    return RedirectResponse(_page_of(lookup), status_code=303)


async def _back_saying(
    sessions: SessionsDep, staff: Staff, lookup: Lookup, flash: Flash
) -> RedirectResponse:
    """Back to the caller's page, with `flash` at its top."""
    await sessions.flash(staff.session, flash)
    return _back(lookup)


async def _refuse(
    sessions: SessionsDep,
    staff: Staff,
    to: str,
    message: str,
    *,
    kept: dict[str, str] | None = None,
    field: str = "",
    **args: object,
) -> RedirectResponse:
    """Back to the page the form was on, with what was wrong at its top and at the field it is
    about (`field`: its id), and what was typed (`kept`: field ids → text) back in its fields
    (there, whatever pages are shown first)."""
    flash = Flash("error", message, dict(args), kept=kept or {}, page=to, field=field)
    await sessions.flash(staff.session, flash)
    return RedirectResponse(to, status_code=303)


async def _audit(
    request: Request,
    db: AsyncSession,
    staff: Staff,
    action: AuditAction,
    *,
    record_id: str,
    reason: str,
    record_type: RecordType = RecordType.PERSON,
) -> None:
    """The audit entry of what this agent did to the caller's record (or for her, `record_type`)
    from this request."""
    await audit.record(
        db,
        actor=staff.username,
        action=action,
        record_type=record_type,
        record_id=record_id,
        reason=reason,
        client_ip=audit.client_ip(request),
    )


def _draft_key(lookup: Lookup, draft: str) -> str | None:
    """The key a grievance filed from one showing of the caller's page is filed under
    (`draft`: the random token that showing's form carries), so the same form sent twice (a
    double click without JavaScript, a post sent again after a dropped connection) files one
    grievance. Bound to the lookup: a token taken to another call's form names nothing there.
    None without a token (a page from before the forms carried one)."""
    if not draft:
        return None
    digest = hashlib.sha256(f"{lookup.id}\x00{draft}".encode()).hexdigest()
    # `console-` and 24 hex digits: the column's 32 characters, and never a conversation's key
    # (32 hex digits, bot/dialogue/flows/grievance.py).
    return f"console-{digest[:24]}"


def _reason(text: str) -> str | None:
    reason = clean_text(text)
    return reason if MIN_REASON <= len(reason) <= MAX_REASON else None


@router.post("/callers", dependencies=[CsrfChecked])
async def search(
    request: Request,
    staff: CurrentStaff,
    db: ConsoleDbDep,
    access: AccessDep,
    sessions: SessionsDep,
    runtime: RuntimeDep,
    cnic: Annotated[str, Form()] = "",
) -> Response:
    """Open a lookup for the CNIC the caller gives (counted against the agent's hourly limit)."""
    try:
        parsed = Cnic.parse(cnic)
    except InvalidCnic:
        return await _refuse(
            sessions,
            staff,
            "/agent",
            N_("That is not a CNIC: a CNIC has 13 digits, like 35202-1234567-1."),
            field="cnic",
        )
    decision = await runtime.rate_limiter.hit("agent", staff.username)
    if not decision.allowed:
        raise ConsoleError(
            429,
            N_("You have searched too many CNICs this hour. Try again in %(minutes)s minutes."),
            minutes=max(1, decision.retry_after // 60),
        )
    lookup = await access.open_lookup(agent=staff.username, cnic=parsed.digits)
    await _audit(
        request,
        db,
        staff,
        AuditAction.LOOKUP,
        record_id=parsed.digits,
        reason="caller search: coarse status",
    )
    return _back(lookup)


@router.get("/callers/{lookup_id}")
async def caller(
    request: Request,
    lookup_id: str,
    staff: CurrentStaff,
    db: ConsoleDbDep,
    registry: RegistrySessionDep,
    access: AccessDep,
    sessions: SessionsDep,
    settings: SettingsDep,
) -> Response:
    """The coarse status, and the record itself while this agent holds a grant for the CNIC.
    Each showing of the record is an audit entry."""
    lookup = await _lookup(access, staff, lookup_id)
    cnic = Cnic(lookup.cnic)
    coarse = await check_eligibility(registry, cnic=cnic, cutoff=settings.pmt_cutoff)
    grant = await access.grant_for(
        agent=staff.username, cnic=cnic.digits, session=staff.session.key
    )
    record = None
    if grant is not None and coarse.status is not EligibilityStatus.NOT_FOUND:
        record = await _load_record(registry, db, cnic=cnic, cutoff=settings.pmt_cutoff)
        await _audit(
            request, db, staff, AuditAction.VIEW, record_id=cnic.digits, reason=grant.audit_reason()
        )
    # Staff may learn that a CNIC has no mobile (the public channels may not): said before the
    # agent tries to send a code, so she goes straight to asking for an override.
    has_mobile = (
        record is None
        and coarse.status is not EligibilityStatus.NOT_FOUND
        and (await registry_repository.registered_mobile(registry, cnic=cnic.digits))[1] is not None
    )
    pending = (
        await access.get_override(lookup.override_request_id)
        if lookup.override_request_id and grant is None
        else None
    )
    # The grievance form shows while the record is open; the form to open it without a code
    # while it is closed (an agent's until she has asked).
    in_registry = coarse.status is not EligibilityStatus.NOT_FOUND
    if record is not None:
        shown = Forms.on(_page_of(lookup), "grievance")
    elif in_registry and (pending is None or staff.can(Role.SUPERVISOR)):
        shown = Forms.on(_page_of(lookup), "reason")
    else:
        shown = Forms.on(_page_of(lookup))
    # A grievance being written for the caller when the session ended comes back to this page
    # after signing in, but its form shows only with the record open, which a new sign-in is
    # not: its words wait, page after page, until the caller is verified again.
    waiting = (
        await sessions.waiting(staff.session, Forms.on(_page_of(lookup), "grievance"))
        if record is None
        else {}
    )
    return await page(
        request,
        "caller.html",
        staff=staff,
        forms=shown,
        waiting=waiting if waiting.get("description", "").strip() else {},
        title=N_("Caller"),
        lookup=lookup,
        cnic_masked=cnic.masked,
        cnic_formatted=cnic.formatted,
        status=coarse.status.value,
        in_registry=in_registry,
        grant=grant,
        grant_minutes=GRANT_SECONDS // 60,
        record=record,
        pending_override=pending,
        has_mobile=has_mobile,
        can_override=staff.can(Role.SUPERVISOR),
        categories=[c.value for c in Category],
        # A fresh token each showing: the grievance form sent twice files once (`_draft_key`).
        draft=secrets.token_urlsafe(16),
        caller_languages=CALLER_LANGUAGES,
        default_language=settings.default_language,
        mask_phone=mask_phone,
    )


def _no_mobile(staff: Staff) -> Flash:
    """No code can be sent: a supervisor opens the record by override; an agent asks one to."""
    if staff.can(Role.SUPERVISOR):
        message = N_(
            "There is no registered mobile for this CNIC, so no code can be sent. Open the "
            "record by override instead, writing why."
        )
    else:
        message = N_(
            "There is no registered mobile for this CNIC, so no code can be sent. Ask a "
            "supervisor for an override."
        )
    return Flash("error", message, {})


@router.post("/callers/{lookup_id}/code", dependencies=[CsrfChecked])
async def send_code(
    request: Request,
    lookup_id: str,
    staff: CurrentStaff,
    db: ConsoleDbDep,
    access: AccessDep,
    sessions: SessionsDep,
    runtime: RuntimeDep,
    registry: RegistrySessionDep,
) -> Response:
    """Send a code to the caller's registered mobile (SPEC §3 limits apply: one a minute, five
    an hour); the caller reads it back to the agent."""
    lookup = await _lookup(access, staff, lookup_id)
    # Staff may learn that a CNIC has no mobile (the public channels may not: they get a decoy
    # code), so ask first: a click that can send nothing must not start the CNIC's resend
    # cooldown nor spend one of its codes for the hour.
    _, mobile = await registry_repository.registered_mobile(registry, cnic=lookup.cnic)
    if mobile is None:
        return await _back_saying(sessions, staff, lookup, _no_mobile(staff))
    try:
        code = await request_code(runtime, cnic=Cnic(lookup.cnic))
    except OtpUnavailable:
        raise ConsoleError(
            503, N_("Codes cannot be sent at the moment. Try again in a minute.")
        ) from None
    issued = code.issued
    if issued.outcome is IssueOutcome.COOLDOWN:
        message = N_("A code was sent less than a minute ago. Wait %(seconds)s seconds.")
        return await _back_saying(
            sessions, staff, lookup, Flash("error", message, {"seconds": issued.retry_after})
        )
    if issued.outcome is IssueOutcome.TOO_MANY:
        message = N_(
            "Five codes were sent to this CNIC this hour. Try again in %(minutes)s minutes."
        )
        return await _back_saying(
            sessions,
            staff,
            lookup,
            Flash("error", message, {"minutes": max(1, issued.retry_after // 60)}),
        )
    if code.mobile is None:  # the mobile was taken off the registry since it was read above
        return await _back_saying(sessions, staff, lookup, _no_mobile(staff))
    await deliver_code(runtime, code, language=None, session=db)
    lookup.code_request_id = issued.request_id
    lookup.code_sent_to = code.mobile_masked
    await access.save_lookup(lookup)
    await _audit(
        request,
        db,
        staff,
        AuditAction.SEND_CODE,
        record_id=lookup.cnic,
        reason=f"code sent to {code.mobile_masked}",
    )
    return await _back_saying(
        sessions,
        staff,
        lookup,
        Flash(
            "ok",
            N_("Code sent to %(phone)s. Ask the caller to read it back."),
            {"phone": code.mobile_masked},
        ),
    )


@router.post("/callers/{lookup_id}/verify", dependencies=[CsrfChecked])
async def verify(
    request: Request,
    lookup_id: str,
    staff: CurrentStaff,
    db: ConsoleDbDep,
    access: AccessDep,
    sessions: SessionsDep,
    runtime: RuntimeDep,
    code: Annotated[str, Form()] = "",
) -> Response:
    """Check the code the caller read back; right, it opens the record for this agent. The
    form sent twice (a double click) finds its code used by the first: it says what the first
    did, not that the code is missing or expired."""
    lookup = await _lookup(access, staff, lookup_id)
    verified = Flash(
        "ok",
        N_("Caller verified. The record is open to you for %(minutes)s minutes."),
        {"minutes": GRANT_SECONDS // 60},
    )

    async def verified_already() -> bool:
        grant = await access.grant_for(
            agent=staff.username, cnic=lookup.cnic, session=staff.session.key
        )
        return grant is not None and grant.basis == "otp"

    if not lookup.code_request_id:
        if await verified_already():
            return await _back_saying(sessions, staff, lookup, verified)
        return await _back_saying(
            sessions, staff, lookup, Flash("error", N_("Send a code first."), {})
        )
    typed = "".join(normalise_text(code).split())
    try:
        checked = await runtime.otp.check(request_id=lookup.code_request_id, code=typed)
    except OtpUnavailable:
        raise ConsoleError(
            503, N_("Codes cannot be checked at the moment. Try again in a minute.")
        ) from None
    if checked.outcome is CheckOutcome.VERIFIED and checked.cnic == lookup.cnic:
        await access.grant(
            agent=staff.username,
            cnic=lookup.cnic,
            session=staff.session.key,
            basis="otp",
            reason="caller read back the code",
        )
        lookup.code_request_id = None
        await access.save_lookup(lookup)
        await _audit(
            request,
            db,
            staff,
            AuditAction.VERIFY,
            record_id=lookup.cnic,
            reason="caller read back the code",
        )
        return await _back_saying(sessions, staff, lookup, verified)
    if checked.outcome is CheckOutcome.EXPIRED and await verified_already():
        return await _back_saying(sessions, staff, lookup, verified)
    await _audit(
        request,
        db,
        staff,
        AuditAction.VERIFY_FAILED,
        record_id=lookup.cnic,
        reason=checked.outcome.value,
    )
    if checked.outcome is CheckOutcome.WRONG:
        flash = Flash(
            "error",
            N_("Wrong code. %(tries)s tries left."),
            {"tries": checked.tries_left},
            field="code",
        )
    else:
        lookup.code_request_id = None
        await access.save_lookup(lookup)
        flash = Flash(
            "error",
            N_("Too many wrong codes: send a new one.")
            if checked.outcome is CheckOutcome.EXHAUSTED
            else N_("The code has expired: send a new one."),
            {},
        )
    return await _back_saying(sessions, staff, lookup, flash)


async def _open_without_code(
    request: Request,
    lookup_id: str,
    staff: Staff,
    db: AsyncSession,
    access: AccessDep,
    sessions: SessionsDep,
    reason: str,
    *,
    act: Callable[[Lookup, str], Awaitable[object]],
    action: AuditAction,
    done: Flash,
) -> Response:
    """An override, or an agent's request for one: with no code to vouch for the caller, the
    written reason is all the audit log has, so nothing is done (`act`) until there is one, and
    the entry (`action`) carries it. An `act` answering None had been done already (the form
    sent twice): nothing more is audited, and the agent is told it is done."""
    lookup = await _lookup(access, staff, lookup_id)
    why = _reason(reason)
    if why is None:
        return await _refuse(
            sessions,
            staff,
            _page_of(lookup),
            N_("Write the reason (at least %(count)s characters)."),
            kept={"override-reason": reason, "request-reason": reason},
            # The page shows a supervisor the override's box, an agent the request's.
            field="override-reason" if staff.can(Role.SUPERVISOR) else "request-reason",
            count=MIN_REASON,
        )
    if await act(lookup, why) is not None:
        await _audit(request, db, staff, action, record_id=lookup.cnic, reason=why)
    return await _back_saying(sessions, staff, lookup, done)


@router.post("/callers/{lookup_id}/override", dependencies=[CsrfChecked])
async def override(
    request: Request,
    lookup_id: str,
    staff: SupervisorStaff,
    db: ConsoleDbDep,
    access: AccessDep,
    sessions: SessionsDep,
    reason: Annotated[str, Form()] = "",
) -> Response:
    """A supervisor or admin opens the record without the caller's code, with a written reason."""
    return await _open_without_code(
        request,
        lookup_id,
        staff,
        db,
        access,
        sessions,
        reason,
        act=lambda lookup, why: access.grant(
            agent=staff.username,
            cnic=lookup.cnic,
            session=staff.session.key,
            basis="override",
            reason=why,
            once=True,
        ),
        action=AuditAction.OVERRIDE,
        done=Flash(
            "ok",
            N_("Override recorded. The record is open to you for %(minutes)s minutes."),
            {"minutes": GRANT_SECONDS // 60},
        ),
    )


@router.post("/callers/{lookup_id}/override-request", dependencies=[CsrfChecked])
async def request_override(
    request: Request,
    lookup_id: str,
    staff: CurrentStaff,
    db: ConsoleDbDep,
    access: AccessDep,
    sessions: SessionsDep,
    reason: Annotated[str, Form()] = "",
) -> Response:
    """Ask a supervisor to open the record (the caller cannot receive a code)."""
    return await _open_without_code(
        request,
        lookup_id,
        staff,
        db,
        access,
        sessions,
        reason,
        act=lambda lookup, why: access.request_override(
            lookup, reason=why, cnic_masked=Cnic(lookup.cnic).masked, session=staff.session.key
        ),
        action=AuditAction.OVERRIDE_REQUEST,
        done=Flash(
            "ok", N_("A supervisor has been asked. Reload this page after they approve."), {}
        ),
    )


@router.post("/callers/{lookup_id}/grievances", dependencies=[CsrfChecked])
async def file_for_caller(
    request: Request,
    lookup_id: str,
    staff: CurrentStaff,
    db: ConsoleDbDep,
    registry: RegistrySessionDep,
    access: AccessDep,
    sessions: SessionsDep,
    runtime: RuntimeDep,
    settings: SettingsDep,
    category: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    language: Annotated[str, Form()] = "",
    draft: Annotated[str, Form()] = "",
) -> Response:
    """File a grievance on the verified caller's behalf; she gets the ticket id by SMS. The same
    form sent again leads to the grievance it filed, filing nothing more."""
    lookup = await _lookup(access, staff, lookup_id)
    grant = await access.grant_for(
        agent=staff.username, cnic=lookup.cnic, session=staff.session.key
    )
    if grant is None:
        raise ConsoleError(403, N_("Verify the caller before filing a grievance for her."))
    # A refused form comes back as it was sent: a long description is never typed twice.
    kept = {"category": category, "description": description, "language": language}
    try:
        chosen = Category(category)
    except ValueError:
        return await _refuse(
            sessions,
            staff,
            _page_of(lookup),
            N_("Choose the kind of grievance."),
            kept=kept,
            field="category",
        )
    found = await registry_repository.get_person_and_household(registry, cnic=lookup.cnic)
    tell_caller = owner_notifier(runtime, db)
    filed_now: list[GrievanceEvent] = []

    async def notify(grievance: Grievance, event: GrievanceEvent) -> None:
        # Called for a grievance filed by this request only, not one this form filed before.
        filed_now.append(event)
        await tell_caller(grievance, event)

    try:
        grievance = await grievances.file_grievance(
            db,
            cnic=Cnic(lookup.cnic),
            category=chosen,
            description=description,
            channel="agent",
            contact_id=None,
            language=language if language in CALLER_LANGUAGES else None,
            filed_by=staff.username,
            district=found[1].district if found else None,
            sla_days=settings.grievance_sla_days,
            notify=notify,
            draft_key=_draft_key(lookup, draft),
        )
    except grievances.InvalidText:
        return await _refuse(
            sessions,
            staff,
            _page_of(lookup),
            N_("Describe the grievance (at most 1000 characters)."),
            kept=kept,
            field="description",
        )
    if filed_now:
        await _audit(
            request,
            db,
            staff,
            AuditAction.FILE_GRIEVANCE,
            record_type=RecordType.GRIEVANCE,
            record_id=grievance.ticket_id,
            reason=f"filed for {Cnic(lookup.cnic).masked} by phone",
        )
    # Sent twice, the form leads to the grievance it filed, saying the same (shown once).
    await sessions.flash(
        staff.session,
        Flash(
            "ok",
            N_("Grievance %(ticket)s filed. The caller gets the ticket number by SMS."),
            {"ticket": grievance.ticket_id},
        ),
    )
    return RedirectResponse(f"/agent/grievances/{grievance.ticket_id}", status_code=303)
