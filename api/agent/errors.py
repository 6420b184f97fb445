"""Console errors become HTML pages in the agent's language (not the API's problem JSON);
a request without a session is sent to the login page."""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.agent import csrf
from api.agent.i18n import N_
from api.agent.pages import page
from api.agent.sessions import SessionStore, SessionsUnavailable, cookie_name, keepable

log = logging.getLogger(__name__)


class ConsoleError(Exception):
    """Answer with an error page: `message` is a catalog msgid, `args` fill its placeholders."""

    def __init__(self, status_code: int, message: str, **args: object) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.args_ = args


class LoginRequired(Exception):
    """No live session: go to the login page, and come back here afterwards."""


def safe_next(target: str | None, default: str = "/agent") -> str:
    """`target` if it is a path inside the console, else `default` (no open redirects)."""
    if (
        not target
        or not target.startswith("/agent")
        or target.startswith("//")
        or "\\" in target
        or any(ord(ch) < 32 for ch in target)
    ):
        return default
    return target


async def console_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConsoleError)
    staff = getattr(request.state, "staff", None)
    return await page(
        request,
        "error.html",
        staff=staff,
        status_code=exc.status_code,
        message=exc.message,
        message_args=exc.args_,
        title=N_("Something is not right"),
    )


async def login_required(request: Request, exc: Exception) -> Response:
    """To the login page, and back here after it. A form sent after the session ended (an hour
    without a request, mid-note) was not acted on: the login page says so, signing in leads
    back to the page the form is on, and what was written in it is there again (`_keep`)."""
    assert isinstance(exc, LoginRequired)
    if request.method == "GET":
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        query = {"next": back} if back != "/agent" else {}
    else:
        form_page = _form_page(request)
        kept = await _keep(request, form_page)
        query = {"next": form_page, "unsaved": "kept" if kept else "1"}
    encoded = urlencode(query)
    return RedirectResponse("/agent/login" + (f"?{encoded}" if encoded else ""), status_code=303)


#: A form on a caller's or a grievance's page posts to that page's path and one word more.
_FORM_ON_A_PAGE = re.compile(r"(/agent/(?:callers|grievances)/[^/]+)/[a-z-]+")


def _form_page(request: Request) -> str:
    """The page a form was sent from: the one its action belongs to, else its Referer's (its
    path only, and only a console path: no redirect leaves Rabta)."""
    path = request.url.path
    on_a_page = _FORM_ON_A_PAGE.fullmatch(path)
    if on_a_page:
        return safe_next(on_a_page.group(1))
    if path == "/agent/callers":  # the search on the first page
        return "/agent"
    referer = urlsplit(request.headers.get("referer") or "")
    return safe_next(referer.path + (f"?{referer.query}" if referer.query else ""))


def _typed(path: str, form: dict[str, str]) -> dict[str, str]:
    """What a console form's fields held, by the ids of the fields its page gives them back
    to (those of a refused form: see the templates). Forms of no text (a code read back, an
    assignment, a decision) give nothing, nor the search (a CNIC is not kept in clear)."""
    action = path.rsplit("/", 1)[-1]
    note, reason = form.get("note", ""), form.get("reason", "")
    if path.startswith("/agent/grievances/") and action == "notes":
        return {"note" if form.get("internal") else "caller-note": note}
    if path.startswith("/agent/grievances/") and action == "status":
        # A supervisor's status form or an agent's escalation: the page shows one of them.
        return {"status-note": note, "escalate-note": note, "to": form.get("to", "")}
    if path.startswith("/agent/callers/") and action == "grievances":
        return {name: form.get(name, "") for name in ("category", "description", "language")}
    if path.startswith("/agent/callers/") and action in ("override", "override-request"):
        return {"override-reason": reason, "request-reason": reason}
    return {}


async def _keep(request: Request, form_page: str) -> bool:
    """Keep what the form sent after the session ended held, for the agent to find in it once
    she has signed in again (`SessionStore.keep_unsent`: server-side, for that session's own
    forms only); True when something was kept. Never an error: at worst nothing is kept."""
    runtime = request.app.state.runtime
    session_id = request.cookies.get(cookie_name(runtime.settings), "")
    if not session_id or not csrf.same_origin(request, runtime.settings):
        return False
    try:
        form = await request.form()
        fields = {name: value for name, value in form.items() if isinstance(value, str)}
        kept = keepable(_typed(request.url.path, fields))
        if not kept:
            return False
        return await SessionStore(runtime.redis, runtime.settings).keep_unsent(
            session_id, csrf_token=fields.get(csrf.FIELD, ""), page=form_page, kept=kept
        )
    except SessionsUnavailable:
        log.info("a form sent after its session ended was not kept (Redis)")
        return False


async def not_found(request: Request) -> Response:
    """Any other path under /agent: the console's own 404 page; a path written with a trailing
    slash (`/agent/`) leads to the page without it, as the rest of the app's paths do (this
    catch-all would otherwise answer before the router's own redirect)."""
    path = request.url.path
    if path.endswith("/") and path.rstrip("/").startswith("/agent"):
        query = request.url.query
        return RedirectResponse(path.rstrip("/") + (f"?{query}" if query else ""), 307)
    raise ConsoleError(404, N_("There is no such page in the console."))


async def unavailable(request: Request, exc: Exception) -> Response:
    """Redis is down: sessions, grants and codes all live there, so the console fails closed."""
    return await page(
        request,
        "error.html",
        staff=None,
        status_code=503,
        message=N_("The console is unavailable for a moment. Try again in a minute."),
        message_args={},
        title=N_("Unavailable"),
        headers={"Retry-After": "30"},
    )


#: An exception handler as Starlette keeps them: a function, or a coroutine function.
ExceptionHandler = Callable[[Request, Any], Response | Awaitable[Response]]


def console_page_instead(
    problem: ExceptionHandler,
) -> Callable[[Request, Exception], Awaitable[Response]]:
    """The app's handler of an error (`problem`, which logs and counts it and answers problem
    JSON), with a console page in the agent's language instead of its JSON on console paths:
    the database away (a 503) says whether what she sent was kept, as a form's work is never
    half done (nothing commits before the response); anything else gone wrong on Rabta's side
    (a 500) says it was logged."""

    async def handle(request: Request, exc: Exception) -> Response:
        answered = problem(request, exc)
        if inspect.isawaitable(answered):
            answered = await answered
        if not request.url.path.startswith("/agent") or answered.status_code not in (500, 503):
            return answered
        if answered.status_code == 500:
            title = N_("Something went wrong")
            message = N_(
                "Something went wrong in the console, and it has been logged. Try again in a "
                "minute; if it happens again, tell your supervisor."
            )
        elif request.method == "GET":
            title = N_("Unavailable")
            message = N_("The console cannot reach its database. Try again in a minute.")
        else:
            title = N_("Unavailable")
            message = N_(
                "The console cannot reach its database. Nothing you sent was saved: send it "
                "again in a minute."
            )
        retry_after = answered.headers.get("retry-after")
        try:
            return await page(
                request,
                "error.html",
                staff=None,  # the flashes it would show live with the session; they keep
                status_code=answered.status_code,
                message=message,
                message_args={},
                title=title,
                headers={"Retry-After": retry_after} if retry_after else None,
            )
        except Exception:  # the page itself cannot be drawn: the problem's answer stands
            log.exception("the console's error page failed on %s", request.url.path)
            return answered

    return handle
