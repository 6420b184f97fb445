"""Signing in and out, and the language switch."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from api.agent import audit, csrf, service
from api.agent.deps import AccessDep, ConsoleDbDep, CsrfChecked, CurrentStaff, SessionsDep
from api.agent.errors import ConsoleError, safe_next
from api.agent.i18n import LANGUAGE_COOKIE, LANGUAGES, N_
from api.agent.pages import page
from api.agent.schemas import AuditAction, RecordType
from api.agent.sessions import cookie_name, secure_cookies
from api.deps import RuntimeDep, SettingsDep
from api.logs import mask_sensitive
from api.ratelimit.http import limit_identity

router = APIRouter(prefix="/agent")

#: Failed sign-ins one address may make, whatever the usernames (password spraying). Only
#: failures count: a call centre signs its whole shift in from behind one address.
LOGIN_FAILURES_PER_IP = "30/10minutes"
LOGIN_REFUSED = N_(
    "Wrong username or password, or the account is locked. Five failed sign-ins in a row lock "
    "an account for 15 minutes."
)

#: Said on the page a form sent after the session ended is given back to, after signing in.
UNSENT_BACK = N_(
    "You were signed out before this was sent, so it was not saved. What you had written is "
    "back in its form: check it and send it again."
)


async def _login_page(
    request: Request,
    settings: SettingsDep,
    *,
    next_path: str,
    username: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    # The login form's CSRF token is bound to a random cookie (no session exists yet).
    nonce = request.cookies.get(csrf.LOGIN_COOKIE) or csrf.new_login_nonce()
    response = await page(
        request,
        "login.html",
        status_code=status_code,
        csrf_token=csrf.login_token(settings, nonce),
        next_path=next_path,
        username=username,
        error=error,
        title=N_("Sign in"),
    )
    response.set_cookie(
        csrf.LOGIN_COOKIE,
        nonce,
        max_age=3600,
        path="/agent",
        httponly=True,
        samesite="lax",
        secure=secure_cookies(settings),
    )
    return response


@router.get("/login")
async def login_form(
    request: Request, settings: SettingsDep, next: str | None = None, unsaved: str | None = None
) -> Response:
    """The sign-in form; `unsaved`: a form was sent after the session had ended (`kept`: and
    what was written in it is kept for this agent's next sign-in)."""
    if unsaved == "kept":
        error: str | None = N_(
            "Your session had ended, so what you just sent was not saved, but what you had "
            "written is kept. Sign in, and it is back in its form on that page, to send again."
        )
    elif unsaved:
        error = N_(
            "Your session had ended, so what you just sent was not saved. Sign in, and you "
            "are taken back to that page to send it again."
        )
    else:
        error = None
    return await _login_page(request, settings, next_path=safe_next(next), error=error)


@router.post("/login")
async def login(
    request: Request,
    db: ConsoleDbDep,
    sessions: SessionsDep,
    runtime: RuntimeDep,
    settings: SettingsDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/agent",
) -> Response:
    """Check the password; on success a brand-new session (any id the browser brought is ended,
    so a planted id is useless: no session fixation)."""
    nonce = request.cookies.get(csrf.LOGIN_COOKIE, "")
    expected = csrf.login_token(settings, nonce) if nonce else ""
    if not csrf.tokens_match(expected, csrf_token) or not csrf.same_origin(request, settings):
        raise ConsoleError(
            403, N_("This form has expired or did not come from the console. Reload the page.")
        )
    ip = audit.client_ip(request) or "unknown"
    # An IPv6 client is counted by its /64: it holds every address in it.
    limit_key = f"agent-login:{limit_identity(ip)}"
    decision = await runtime.rate_limiter.test("ip", limit_key, LOGIN_FAILURES_PER_IP)
    if not decision.allowed:
        raise ConsoleError(
            429,
            N_("Too many sign-in attempts from this computer. Try again in %(minutes)s minutes."),
            minutes=max(1, decision.retry_after // 60),
        )
    result = await service.authenticate(db, username=username, password=password)
    if result.outcome is not service.LoginOutcome.SIGNED_IN or result.agent is None:
        await runtime.rate_limiter.hit("ip", limit_key, LOGIN_FAILURES_PER_IP)
        reason = {
            service.LoginOutcome.LOCKED: "account locked",
            service.LoginOutcome.REFUSED: "wrong password" if result.agent else "unknown user",
        }[result.outcome]
        if result.locked_now:
            reason = "wrong password; account locked for 15 minutes"
        await audit.record(
            db,
            actor=result.agent.username if result.agent else "anonymous",
            action=AuditAction.LOGIN_FAILED,
            record_type=RecordType.AGENT,
            # What was typed may be anything, even a CNIC: masked before it is kept.
            record_id=mask_sensitive(service.normalise_username(username))[:64] or "-",
            reason=reason,
            client_ip=ip,
        )
        return await _login_page(
            request,
            settings,
            next_path=safe_next(next),
            username=username[:64],
            error=LOGIN_REFUSED,
            status_code=401,
        )
    previous = request.cookies.get(cookie_name(settings))
    # Forms this agent sent after her last session here had ended (one a tab), and refused
    # ones not shown again yet: their words come back, each on its own form's page.
    carried = (
        await sessions.take_unsent(previous, agent_id=result.agent.id, said=UNSENT_BACK)
        if previous
        else []
    )
    if previous:
        await sessions.end(previous)
    session_id, session = await sessions.create(agent_id=result.agent.id)
    for flash in carried:
        await sessions.flash(session, flash)
    await audit.record(
        db,
        actor=result.agent.username,
        action=AuditAction.LOGIN,
        record_type=RecordType.AGENT,
        record_id=result.agent.username,
        client_ip=ip,
    )
    # Back to the page this sign-in was asked from if words wait there (this tab's form), else
    # to the page of the form sent last.
    back = safe_next(next)
    waiting = [flash.page for flash in carried]
    if waiting and urlsplit(back).path not in waiting:
        back = safe_next(waiting[-1])
    response = RedirectResponse(back, status_code=303)
    # No max_age: the cookie ends with the browser; the session ends in Redis on its own timers.
    response.set_cookie(
        cookie_name(settings),
        session_id,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure_cookies(settings),
    )
    response.delete_cookie(csrf.LOGIN_COOKIE, path="/agent")
    return response


@router.post("/logout", dependencies=[CsrfChecked])
async def logout(
    request: Request,
    staff: CurrentStaff,
    db: ConsoleDbDep,
    sessions: SessionsDep,
    access: AccessDep,
    settings: SettingsDep,
) -> Response:
    """End this session on the server (the cookie alone would not be enough), and with it every
    record a caller's code or an override opened in it."""
    await access.end_session(staff.session.key)
    await sessions.end(staff.session_id)
    await audit.record(
        db,
        actor=staff.username,
        action=AuditAction.LOGOUT,
        record_type=RecordType.AGENT,
        record_id=staff.username,
        client_ip=audit.client_ip(request),
    )
    response = RedirectResponse("/agent/login", status_code=303)
    response.delete_cookie(cookie_name(settings), path="/")
    return response


@router.get("/language")
async def switch_language(
    settings: SettingsDep, to: str = "en", next: str | None = None
) -> Response:
    """Show the console in English or Urdu from now on (a preference cookie, nothing else)."""
    response = RedirectResponse(safe_next(next), status_code=303)
    if to in LANGUAGES:
        response.set_cookie(
            LANGUAGE_COOKIE,
            to,
            max_age=365 * 24 * 3600,
            path="/agent",
            httponly=True,
            samesite="lax",
            secure=secure_cookies(settings),
        )
    return response
