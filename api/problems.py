"""Errors as RFC 9457 problem details (`application/problem+json`), never a bare 500 page."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
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

#: Every problem type's URI is this and its name (RFC 9457 §3.1.1): an identifier a partner's
#: front end compares as a string to say what went wrong in its user's language (`detail` is
#: English, for the developer). The three first published keep their values.
PROBLEM_BASE = "https://rabta.example/problems/"


@dataclass(frozen=True)
class ProblemType:
    """One kind of problem: its status, its title, what causes it (as `/openapi.json` and the
    README say) and the extension members it carries besides `detail`."""

    uri: str
    status: int
    title: str
    cause: str
    fields: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.uri.removeprefix(PROBLEM_BASE)


#: Every type, by URI (filled by `_type` below, in the order the README lists them).
PROBLEM_TYPES: dict[str, ProblemType] = {}


def _type(name: str, status: int, title: str, cause: str, *fields: str) -> str:
    uri = PROBLEM_BASE + name
    PROBLEM_TYPES[uri] = ProblemType(uri, status, title, cause, fields)
    return uri


NOT_JSON = _type(
    "not-json",
    400,
    "Body is not JSON",
    "The body is not JSON: `detail` says where it breaks, by line and column "
    "(`line`, `column`, when it is JSON that breaks off).",
    "line",
    "column",
)
INVALID_API_KEY = _type(
    "invalid-api-key",
    401,
    "Invalid API key",
    "The `X-API-Key` header does not hold a valid, active partner key.",
)
TOKEN_REQUIRED = _type(
    "token-required",
    401,
    "Bearer token required",
    "No bearer token: `POST /v1/otp/verify` gives one.",
)
TOKEN_INVALID = _type(
    "token-invalid",
    401,
    "Bearer token not valid",
    "The bearer token has expired or is not valid: verify again for a new one.",
)
WRONG_CODE = _type(
    "wrong-code",
    401,
    "Wrong code",
    "The code is wrong: `tries_left` says how many tries are left (0: request a new code).",
    "tries_left",
)
CODE_EXPIRED = _type(
    "code-expired",
    401,
    "Code expired",
    "The code has expired or was already used (or the request id is not known): request a "
    "new code.",
)
GRIEVANCE_NOT_FOUND = _type(
    "grievance-not-found",
    404,
    "No such grievance",
    "None of the verified person's grievances has this ticket id.",
)
BODY_TOO_LARGE = _type(
    "body-too-large",
    413,
    "Content Too Large",
    "The body is larger than the service accepts (`max_bytes`).",
    "max_bytes",
)
JSON_REQUIRED = _type(
    "json-required",
    415,
    "Unsupported Media Type",
    "The body is not sent as JSON (`Content-Type: application/json`).",
)
NOT_A_CNIC = _type(
    "not-a-cnic",
    422,
    "Not a CNIC",
    "Not a CNIC: 13 digits, the first one 1 to 7.",
)
INVALID_REQUEST = _type(
    "invalid-request",
    422,
    "Unprocessable Content",
    "The body is JSON but not what the call takes (or a parameter is not valid): `errors` "
    "names each field and what is wrong with it.",
    "errors",
)
RATE_LIMITED = _type(
    "rate-limited",
    429,
    "Too Many Requests",
    "Too many calls from this caller: its partner's quota (with `X-API-Key`), or its address's.",
    "retry_after",
)
TOO_MANY_LOOKUPS = _type(
    "too-many-lookups",
    429,
    "Too Many Requests",
    "Too many look-ups from this address (an anonymous caller's, as a phone's).",
    "retry_after",
)
CNIC_LOOKUPS_EXHAUSTED = _type(
    "cnic-lookups-exhausted",
    429,
    "Too Many Requests",
    "Too many look-ups of this CNIC from all callers today.",
    "retry_after",
)
CODE_RECENTLY_SENT = _type(
    "code-recently-sent",
    429,
    "Too Many Requests",
    "A code was sent for this CNIC within the resend wait.",
    "retry_after",
)
TOO_MANY_CODES = _type(
    "too-many-codes",
    429,
    "Too Many Requests",
    "As many codes were sent for this CNIC as it may have this hour.",
    "retry_after",
)
TOO_MANY_WRONG_CODES = _type(
    "too-many-wrong-codes",
    429,
    "Too Many Requests",
    "Too many wrong codes for this request: request a new code once `retry_after` has passed.",
    "retry_after",
)
INTERNAL_ERROR = _type(
    "internal-error",
    500,
    "Internal Server Error",
    "Something went wrong on the service's side; it has been logged.",
)
SERVICE_BUSY = _type(
    "service-busy",
    503,
    "Service Unavailable",
    "The service is overloaded, or could not answer in time.",
    "retry_after",
)
SERVICE_UNAVAILABLE = _type(
    "service-unavailable",
    503,
    "Service Unavailable",
    "The database is down for a moment.",
    "retry_after",
)
VERIFICATION_UNAVAILABLE = _type(
    "verification-unavailable",
    503,
    "Verification unavailable",
    "Verification is unavailable for a moment: codes cannot be sent or checked, and bearer "
    "tokens cannot be checked.",
    "retry_after",
)


#: Where a route's `responses=` names the problem types each status can carry (`documented`),
#: for api/openapi.py to list them.
TYPES_KEY = "x-problem-types"


def documented(*types: str) -> dict[int | str, dict[str, Any]]:
    """A route's `responses=`: each status the problem types can answer, with their causes and
    their URIs (api/openapi.py adds what every `/v1` call can answer besides)."""
    responses: dict[int | str, dict[str, Any]] = {}
    for uri in types:
        known = PROBLEM_TYPES[uri]
        response = responses.setdefault(known.status, {"description": "", TYPES_KEY: []})
        response["description"] = " ".join(filter(None, (response["description"], known.cause)))
        response[TYPES_KEY].append(uri)
    return responses


def retry_after_member(headers: Mapping[str, str] | None) -> dict[str, int]:
    """`retry_after` (seconds) for a problem whose headers carry `Retry-After`: the same wait,
    in the body, for a client that does not read headers."""
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after" and value.isdigit():
            return {"retry_after": int(value)}
    return {}


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
        title = title or title_of(type_, status)
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type_
        self.headers = headers or {}
        self.extensions = extensions


def title_of(type_: str, status: int) -> str:
    """A type's own title, or the status's phrase for one not in `PROBLEM_TYPES`."""
    known = PROBLEM_TYPES.get(type_)
    return known.title if known else HTTPStatus(status).phrase


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
        "title": title or title_of(type_, status),
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if instance:
        # The path, with any CNIC or phone in it masked as everywhere else (SPEC §3): a 429 on
        # `/v1/eligibility/{cnic}` names the CNIC as its 200 would.
        body["instance"] = mask_sensitive(instance)
    body.update(retry_after_member(headers))
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
        exc.status_code,
        detail,
        # FastAPI's 400 is a body it could not read; any other status here (an unknown path,
        # a method the path does not take) says all there is to say (RFC 9457 §4.2.1).
        type_=_HTTP_TYPES.get(exc.status_code, "about:blank"),
        instance=request.url.path,
        headers=dict(exc.headers or {}),
    )


#: The types of the statuses Starlette's and FastAPI's own errors answer with.
_HTTP_TYPES = {400: NOT_JSON, 413: BODY_TOO_LARGE}


#: FastAPI's error type for a body declared JSON that does not parse.
JSON_INVALID = "json_invalid"


def _not_json(error: dict[str, Any], body: Any) -> tuple[str, dict[str, Any]]:
    """What is wrong with a body that is not JSON, from FastAPI's `json_invalid` error: the
    parser's reason and where it stopped, by line and column (the json module's own words,
    which never quote the input), so a partner can find the fault without the body being
    repeated back, personal data and all; and the line and column as members, when known."""
    reason = str(error.get("ctx", {}).get("error") or "it does not parse")
    reason = reason[:1].lower() + reason[1:]
    loc = error.get("loc", ())
    position = loc[-1] if loc and isinstance(loc[-1], int) else None
    if position is None or not isinstance(body, str):
        return f"The body is not JSON: {reason}.", {}
    line = body.count("\n", 0, position) + 1
    column = position - body.rfind("\n", 0, position)
    # "Invalid control character at", "Unterminated string starting at": the place follows.
    where = "" if reason.endswith(" at") else " at"
    detail = f"The body is not JSON: {reason}{where} line {line}, column {column}."
    return detail, {"line": line, "column": column}


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    broken = next((e for e in exc.errors() if e.get("type") == JSON_INVALID), None)
    if broken is not None:
        # Malformed syntax is a 400 (RFC 9110 §15.5.1); 422 says the syntax was right and the
        # content was not (§15.5.21), which a partner's code would go looking for in `errors`.
        detail, where = _not_json(broken, exc.body)
        return problem_response(400, detail, type_=NOT_JSON, instance=request.url.path, **where)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    return problem_response(
        422,
        "The request is not valid.",
        type_=INVALID_REQUEST,
        instance=request.url.path,
        errors=errors,
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
        type_=SERVICE_UNAVAILABLE,
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
    return problem_response(
        500, "Something went wrong on our side; it has been logged.", type_=INTERNAL_ERROR
    )


def install(app: FastAPI) -> None:
    """Route every error through problem details."""
    app.add_exception_handler(Problem, _problem)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    for unavailable in (DBAPIError, *UNWRAPPED_UNAVAILABLE):
        app.add_exception_handler(unavailable, _database)
    app.add_exception_handler(Exception, _unexpected)
