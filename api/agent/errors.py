"""Console errors become HTML pages in the agent's language (not the API's problem JSON);
a request without a session is sent to the login page."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.agent.i18n import N_
from api.agent.pages import page


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
    without a request, mid-note) was not acted on: the login page says so, and signing in leads
    back to the page the form was on (its Referer, when it is a console page)."""
    assert isinstance(exc, LoginRequired)
    if request.method == "GET":
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        query = {"next": back} if back != "/agent" else {}
    else:
        # Only the Referer's path is used, and only a console path: no redirect leaves Rabta.
        referer = urlsplit(request.headers.get("referer") or "")
        page = referer.path + (f"?{referer.query}" if referer.query else "")
        query = {"next": safe_next(page), "unsaved": "1"}
    encoded = urlencode(query)
    return RedirectResponse("/agent/login" + (f"?{encoded}" if encoded else ""), status_code=303)


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


def database_unavailable(
    problem: ExceptionHandler,
) -> Callable[[Request, Exception], Awaitable[Response]]:
    """The app's handler of a database that is away (`problem`, which logs and counts it and
    answers problem JSON), with a console page in the agent's language instead of its JSON on
    console paths, saying whether what she sent was kept: a form's work is never half done,
    as nothing commits before the response."""

    async def handle(request: Request, exc: Exception) -> Response:
        answered = problem(request, exc)
        if inspect.isawaitable(answered):
            answered = await answered
        if not request.url.path.startswith("/agent") or answered.status_code != 503:
            return answered
        message = (
            N_("The console cannot reach its database. Try again in a minute.")
            if request.method == "GET"
            else N_(
                "The console cannot reach its database. Nothing you sent was saved: send it "
                "again in a minute."
            )
        )
        retry_after = answered.headers.get("retry-after")
        return await page(
            request,
            "error.html",
            staff=None,  # the flashes it would show live with the session; they keep
            status_code=503,
            message=message,
            message_args={},
            title=N_("Unavailable"),
            headers={"Retry-After": retry_after} if retry_after else None,
        )

    return handle
