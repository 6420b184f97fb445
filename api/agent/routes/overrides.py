"""Supervisors approve or refuse agents' requests to open a record without the caller's code."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from api.agent import audit
from api.agent.deps import AccessDep, ConsoleDbDep, CsrfChecked, SessionsDep, SupervisorStaff
from api.agent.i18n import N_
from api.agent.pages import page
from api.agent.schemas import AuditAction, RecordType
from api.agent.sessions import Flash

router = APIRouter(prefix="/agent")


@router.get("/overrides")
async def pending(request: Request, staff: SupervisorStaff, access: AccessDep) -> Response:
    """Requests waiting for a decision, oldest first."""
    return await page(
        request,
        "overrides.html",
        staff=staff,
        title=N_("Override requests"),
        requests=await access.pending_overrides(),
    )


async def _decide(
    request: Request,
    request_id: str,
    *,
    approve: bool,
    staff: SupervisorStaff,
    db: ConsoleDbDep,
    access: AccessDep,
    sessions: SessionsDep,
) -> Response:
    waiting = await access.get_override(request_id)
    if waiting is not None and waiting.agent == staff.username:
        # Four eyes: a supervisor who needs a record overrides directly, on their own name.
        await sessions.flash(
            staff.session, Flash("error", N_("You cannot decide on your own request."), {})
        )
        return RedirectResponse("/agent/overrides", status_code=303)
    taken = await access.take_override(request_id)
    if taken is None:
        await sessions.flash(
            staff.session,
            Flash("error", N_("That request was already decided or has expired."), {}),
        )
        return RedirectResponse("/agent/overrides", status_code=303)
    lookup = await access.get_lookup(taken.lookup_id, agent=taken.agent)
    if approve:
        await access.grant(
            agent=taken.agent,
            cnic=taken.cnic,
            # The record opens in the sign-in the agent asked from, not in a later one.
            session=taken.session,
            basis="override",
            reason=taken.reason,
            approved_by=staff.username,
        )
    elif lookup is not None:
        lookup.override_denied_by = staff.username
    if lookup is not None:
        lookup.override_request_id = None
        await access.save_lookup(lookup)
    await audit.record(
        db,
        actor=staff.username,
        action=AuditAction.OVERRIDE_APPROVE if approve else AuditAction.OVERRIDE_DENY,
        record_type=RecordType.PERSON,
        record_id=taken.cnic,
        reason=f"request of {taken.agent}: {taken.reason}",
        client_ip=audit.client_ip(request),
    )
    message = (
        N_("Approved: %(agent)s can open the record.")
        if approve
        else N_("Refused: %(agent)s has been told.")
    )
    await sessions.flash(staff.session, Flash("ok", message, {"agent": taken.agent}))
    return RedirectResponse("/agent/overrides", status_code=303)


@router.post("/overrides/{request_id}/approve", dependencies=[CsrfChecked])
async def approve(
    request: Request,
    request_id: str,
    staff: SupervisorStaff,
    db: ConsoleDbDep,
    access: AccessDep,
    sessions: SessionsDep,
) -> Response:
    return await _decide(
        request, request_id, approve=True, staff=staff, db=db, access=access, sessions=sessions
    )


@router.post("/overrides/{request_id}/deny", dependencies=[CsrfChecked])
async def deny(
    request: Request,
    request_id: str,
    staff: SupervisorStaff,
    db: ConsoleDbDep,
    access: AccessDep,
    sessions: SessionsDep,
) -> Response:
    return await _decide(
        request, request_id, approve=False, staff=staff, db=db, access=access, sessions=sessions
    )
