"""Errors as RFC 9457 problem details (`application/problem+json`), never a bare 500 page."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import Counter
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from api.logs import mask_sensitive
from bot.render import RenderError

log = logging.getLogger(__name__)

RENDER_ERRORS = Counter(
    "rabta_render_errors_total",
    "Replies that failed to render (a broken template, or a catalog entry broken in one "
    "language), by language, message, and the language answered in instead (none: the request "
    "failed).",
    ["language", "message", "answered_in"],
)

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """Raise anywhere in a request to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        title: str | None = None,
        type_: str = "about:blank",
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or title or HTTPStatus(status).phrase)
        self.status = status
        self.title = title or HTTPStatus(status).phrase
        self.detail = detail
        self.type = type_
        self.headers = headers or {}
        self.extensions = extensions


def problem_response(
    status: int,
    detail: str | None = None,
    *,
    title: str | None = None,
    type_: str = "about:blank",
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": type_,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if instance:
        # The path, with any CNIC or phone in it masked as everywhere else (SPEC §3): a 429 on
        # `/v1/eligibility/{cnic}` names the CNIC as its 200 would.
        body["instance"] = mask_sensitive(instance)
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


async def _problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(
        exc.status,
        exc.detail,
        title=exc.title,
        type_=exc.type,
        instance=request.url.path,
        headers=exc.headers,
        **exc.extensions,
    )


def _unreadable_body(cause: BaseException | None) -> str | None:
    """Why FastAPI could not read a body declared JSON, where its own 400 says only "There was
    an error parsing the body"; None for any other cause."""
    if isinstance(cause, UnicodeDecodeError):
        return f"The body is not JSON: it is not UTF-8 text (byte {cause.start + 1} is not UTF-8)."
    if isinstance(cause, RecursionError):
        return "The body is not JSON that can be read: it is nested too deeply."
    return None


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail: str | None = exc.detail if isinstance(exc.detail, str) else None
    if detail == HTTPStatus(exc.status_code).phrase:
        detail = None
    if exc.status_code == 400:
        detail = _unreadable_body(exc.__cause__) or detail
    return problem_response(
        exc.status_code, detail, instance=request.url.path, headers=dict(exc.headers or {})
    )


#: FastAPI's error type for a body declared JSON that does not parse.
JSON_INVALID = "json_invalid"


def _not_json_detail(error: dict[str, Any], body: Any) -> str:
    """What is wrong with a body that is not JSON, from FastAPI's `json_invalid` error: the
    parser's reason and where it stopped, by line and column (the json module's own words,
    which never quote the input), so a partner can find the fault without the body being
    repeated back, personal data and all."""
    reason = str(error.get("ctx", {}).get("error") or "it does not parse")
    reason = reason[:1].lower() + reason[1:]
    loc = error.get("loc", ())
    position = loc[-1] if loc and isinstance(loc[-1], int) else None
    if position is None or not isinstance(body, str):
        return f"The body is not JSON: {reason}."
    line = body.count("\n", 0, position) + 1
    column = position - body.rfind("\n", 0, position)
    # "Invalid control character at", "Unterminated string starting at": the place follows.
    where = "" if reason.endswith(" at") else " at"
    return f"The body is not JSON: {reason}{where} line {line}, column {column}."


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    broken = next((e for e in exc.errors() if e.get("type") == JSON_INVALID), None)
    if broken is not None:
        # Malformed syntax is a 400 (RFC 9110 §15.5.1); 422 says the syntax was right and the
        # content was not (§15.5.21), which a partner's code would go looking for in `errors`.
        return problem_response(400, _not_json_detail(broken, exc.body), instance=request.url.path)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    return problem_response(
        422, "The request is not valid.", instance=request.url.path, errors=errors
    )


#: Seconds a client (Twilio, a partner app) is asked to wait while the database is unreachable.
DATABASE_RETRY_AFTER = 5


#: What reaches the app unwrapped when the database is away: a connection refused or reset
#: before the driver wrapped it, asyncpg's connect timeout (a server that accepts and says
#: nothing, a partition) and the pool's checkout timeout, which SQLAlchemy does not wrap either.
UNWRAPPED_UNAVAILABLE = (ConnectionError, TimeoutError, PoolTimeout)


class DatabaseStalled(ConnectionError):
    """The database did not answer in time (a partition, a stalled server): as unavailable as
    one that refused the connection, and answered the same way."""


#: SQLSTATEs of a statement that failed for now, not for what it asked (see below).
_TRANSIENT = frozenset({"57014", "40P01", "40001", "55P03"})


def is_statement_refused(exc: BaseException) -> bool:
    """True for a statement the server gave up on for now (`_TRANSIENT`): the database itself
    is there, so what must wait can be written to it."""
    state = str(getattr(getattr(exc, "orig", None), "sqlstate", "") or "")
    return isinstance(exc, DBAPIError) and state in _TRANSIENT


def is_database_unavailable(exc: BaseException) -> bool:
    """True for a lost, refused or unanswered database connection (a restart, a failover, a
    partition, a busy SQLite file), as opposed to a query or a value that is wrong: the same
    request may succeed later."""
    if isinstance(exc, UNWRAPPED_UNAVAILABLE):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    # PostgreSQL: connection exceptions (08…), operator intervention (57P…: shutting down,
    # starting up) and insufficient resources (53…: too many connections); and a statement
    # the server gave up on that may succeed a moment later: cancelled (57014: a statement
    # timeout, an operator's pg_cancel_backend on a query stuck behind a lock), a deadlock or
    # a serialization failure (40P01, 40001), a lock not granted (55P03: lock_timeout). An SMS
    # meeting one is held and answered later instead of lost to a 500 Twilio does not retry.
    state = str(getattr(exc.orig, "sqlstate", "") or "")
    if state.startswith(("08", "57P", "53")) or state in _TRANSIENT:
        return True
    message = str(exc.orig).lower()
    if isinstance(exc, InterfaceError):
        return "closed" in message  # asyncpg: the connection went away under the transaction
    return isinstance(exc, OperationalError) and "locked" in message  # SQLite's busy timeout


async def _database(request: Request, exc: Exception) -> JSONResponse:
    if not is_database_unavailable(exc):
        return await _unexpected(request, exc)
    # Nothing was committed: a 503 tells gateways and partners to send it again (Twilio does so
    # only when the webhook URL's connection overrides ask it to retry a 5xx; by default it
    # calls the number's fallback URL), one line per request instead of a traceback, and the
    # worker's episode of late answers (api/surge.py) the operator's WARNING.
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is not None:
        runtime.late.happened(runtime.late.AWAY_503)
    log.info(
        "database unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__
    )
    return problem_response(
        503,
        "The service is briefly unavailable; try again shortly.",
        instance=request.url.path,
        headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
    )


#: The status recorded for a request whose client left before it was read (nginx's 499):
#: nobody receives it, but the request metrics count it apart from the 5xx.
CLIENT_CLOSED_REQUEST = 499


async def _client_gone(request: Request, exc: Exception) -> Response:
    """The client closed its connection before its request was read whole: a gateway that
    gave up on a queued request, a phone that lost its signal, a load generator stopping.
    Nothing was changed (every route reads its body before it writes anything), so there is
    nothing to answer nor to keep: one line, not the traceback and the 500 an unexpected error
    gets, which at a surge's end would fill the log with errors that are not."""
    log.info("client went away before %s %s was read", request.method, request.url.path)
    return Response(status_code=CLIENT_CLOSED_REQUEST)


def reply_failed(language: str, message: str, answered_in: str | None, exc: Exception) -> None:
    """A reply that failed to render in `language` (the renderer's `on_failure`): counted under
    its language and message, and logged with its traceback for the catalog to be fixed, whether
    it was answered in a fallback language (`answered_in`) or not at all."""
    RENDER_ERRORS.labels(language, message, answered_in or "none").inc()
    log.error(
        "reply %s failed to render in language %s; %s",
        message,
        language,
        f"answered in {answered_in}" if answered_in else "not answered",
        exc_info=exc,
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, RenderError):  # counted and logged with its traceback as it failed
        log.error("%s on %s %s", exc, request.method, request.url.path)
    else:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(500, "Something went wrong on our side; it has been logged.")


def install(app: FastAPI) -> None:
    """Route every error through problem details."""
    app.add_exception_handler(Problem, _problem)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    for unavailable in (DBAPIError, *UNWRAPPED_UNAVAILABLE):
        app.add_exception_handler(unavailable, _database)
    app.add_exception_handler(Exception, _unexpected)
