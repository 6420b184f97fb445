"""Every error a `/v1` call really answers is in `/openapi.json`: each case below drives one
cause of one status (a bad key, a limit, a wrong code, the database or Redis away, a body that
is not JSON, …) and finds that status documented for the operation as a problem document, with
a description that names that cause (a partner reading the 401 of `/v1/otp/verify` learns that
a bad `X-API-Key` answers it too, not only a wrong code)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.problems import (
    BODY_TOO_LARGE,
    CNIC_LOOKUPS_EXHAUSTED,
    CODE_EXPIRED,
    CODE_RECENTLY_SENT,
    GRIEVANCE_NOT_FOUND,
    INVALID_API_KEY,
    INVALID_REQUEST,
    JSON_REQUIRED,
    NOT_A_CNIC,
    NOT_JSON,
    PROBLEM_TYPES,
    RATE_LIMITED,
    SERVICE_BUSY,
    SERVICE_UNAVAILABLE,
    TOKEN_INVALID,
    TOKEN_REQUIRED,
    TOO_MANY_CODES,
    TOO_MANY_LOOKUPS,
    TOO_MANY_WRONG_CODES,
    VERIFICATION_UNAVAILABLE,
    WRONG_CODE,
)
from api.settings import Settings
from tests.conftest import ELIGIBLE, ELIGIBLE_WIFE, NOT_ELIGIBLE, app_client, running_app
from tests.faults.services import free_port

pytestmark = pytest.mark.usefixtures("registry")

BAD_KEY = {"X-API-Key": "rbt_" + "x" * 43}
NOT_A_TOKEN = {"Authorization": "Bearer rbt.not-a-token"}
JSON = {"content-type": "application/json"}

#: The settings each case's app runs with, besides the tests' own.
VARIANTS: dict[str, Callable[[Settings], dict[str, Any]]] = {
    "as-is": lambda s: {},
    "ip-quota-1": lambda s: {"limit_ip": "1/minute"},
    "sender-1": lambda s: {"limit_sender": "1/hour"},
    "cnic-1": lambda s: {"limit_cnic": "1/day"},
    "one-code-an-hour": lambda s: {"limit_otp": "1/hour", "otp_resend_seconds": 1},
    "database-away": lambda s: {
        "database_url": f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x",
        "registry_database_url": None,
    },
    "redis-away": lambda s: {"redis_url": f"redis://127.0.0.1:{free_port()}/0"},
}


@dataclass
class Calls:
    """The apps a case calls, each started once, and a live bearer token for the registry's
    eligible wife (issued in the tests' Redis, so the database-away app knows it too)."""

    settings: Settings
    stack: contextlib.AsyncExitStack
    token: str = ""
    apps: dict[str, FastAPI] = field(default_factory=dict)

    async def app(self, variant: str) -> FastAPI:
        if variant not in self.apps:
            settings = self.settings.model_copy(update=VARIANTS[variant](self.settings))
            self.apps[variant] = await self.stack.enter_async_context(running_app(settings))
        return self.apps[variant]

    async def send(
        self,
        method: str,
        path: str,
        *,
        on: str = "as-is",
        peer: str | None = None,
        bearer: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if bearer:
            headers["Authorization"] = f"Bearer {self.token}"
        async with app_client(await self.app(on), peer=peer) as client:
            return await client.request(method, path, headers=headers, **kwargs)


@pytest.fixture
async def calls(settings: Settings, redis: object) -> AsyncIterator[Calls]:
    async with contextlib.AsyncExitStack() as stack:
        calls = Calls(settings=settings, stack=stack)
        working = await calls.app("as-is")
        calls.token = await working.state.runtime.tokens.issue(cnic=ELIGIBLE_WIFE)
        yield calls


Drive = Callable[[Calls], Awaitable[httpx.Response]]


async def _twice(calls: Calls, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """The second of two calls: the first spends the limit, whatever it answers."""
    first = await calls.send(method, path, **kwargs)
    assert first.status_code != 429, first.text
    return await calls.send(method, path, **kwargs)


async def _code_request(calls: Calls) -> str:
    response = await calls.send("POST", "/v1/otp", json={"cnic": ELIGIBLE_WIFE})
    assert response.status_code == 202, response.text
    return str(response.json()["request_id"])


async def _wrong_code(calls: Calls) -> httpx.Response:
    request_id = await _code_request(calls)
    return await calls.send(
        "POST", "/v1/otp/verify", json={"request_id": request_id, "code": "000000"}
    )


async def _too_many_codes(calls: Calls) -> httpx.Response:
    """A second code past the resend wait, where the hour allows one."""
    first = await calls.send("POST", "/v1/otp", on="one-code-an-hour", json={"cnic": ELIGIBLE})
    assert first.status_code == 202, first.text
    await asyncio.sleep(1.2)  # the resend wait of 1 s is over
    return await calls.send("POST", "/v1/otp", on="one-code-an-hour", json={"cnic": ELIGIBLE})


async def _last_wrong_code(calls: Calls) -> httpx.Response:
    request_id = await _code_request(calls)
    wrong = {"request_id": request_id, "code": "000000"}
    for _ in range(calls.settings.otp_max_attempts - 1):
        assert (await calls.send("POST", "/v1/otp/verify", json=wrong)).status_code == 401
    return await calls.send("POST", "/v1/otp/verify", json=wrong)


async def _too_many_wrong_codes(calls: Calls) -> httpx.Response:
    request_id = await _code_request(calls)
    wrong = {"request_id": request_id, "code": "000000"}
    for _ in range(calls.settings.otp_max_attempts):
        assert (await calls.send("POST", "/v1/otp/verify", json=wrong)).status_code == 401
    return await calls.send("POST", "/v1/otp/verify", json=wrong)


async def _cnic_from_two_addresses(calls: Calls) -> httpx.Response:
    path = f"/v1/eligibility/{ELIGIBLE}"
    first = await calls.send("GET", path, on="cnic-1", peer="192.0.2.1")
    assert first.status_code == 200, first.text
    return await calls.send("GET", path, on="cnic-1", peer="192.0.2.2")


async def _two_cnics_from_one_address(calls: Calls) -> httpx.Response:
    first = await calls.send("GET", f"/v1/eligibility/{ELIGIBLE}", on="sender-1")
    assert first.status_code == 200, first.text
    return await calls.send("GET", f"/v1/eligibility/{NOT_ELIGIBLE}", on="sender-1")


def _call(method: str, path: str, **kwargs: Any) -> Drive:
    return lambda calls: calls.send(method, path, **kwargs)


def _again(method: str, path: str, **kwargs: Any) -> Drive:
    return lambda calls: _twice(calls, method, path, **kwargs)


def _mine(method: str, path: str, **kwargs: Any) -> Drive:
    """A call with the bearer token."""
    return lambda calls: calls.send(method, path, bearer=True, **kwargs)


ELIGIBILITY = f"/v1/eligibility/{ELIGIBLE}"
VERIFY = "/v1/otp/verify"
GRIEVANCES = "/v1/me/grievances"
OTP = {"cnic": ELIGIBLE_WIFE}
CODE = {"request_id": "r" * 22, "code": "123456"}
COMPLAINT = {"category": "other", "description": "No money since May."}
BIG = "x" * (64 * 1024 + 1)

#: Each operation's errors: (status, its problem type, what its description names, a fragment of
#: the answer's detail, how to drive it).
ERRORS: dict[str, list[tuple[int, str, str, str, Drive]]] = {
    "GET /v1/eligibility/{cnic}": [
        (422, NOT_A_CNIC, "CNIC", "A CNIC is 13 digits", _call("GET", "/v1/eligibility/12345")),
        (
            401,
            INVALID_API_KEY,
            "X-API-Key",
            "X-API-Key",
            _call("GET", ELIGIBILITY, headers=BAD_KEY),
        ),
        (
            429,
            RATE_LIMITED,
            "quota",
            "Too many requests",
            _again("GET", ELIGIBILITY, on="ip-quota-1"),
        ),
        (
            429,
            TOO_MANY_LOOKUPS,
            "look-ups from this address",
            "from this address",
            _two_cnics_from_one_address,
        ),
        (
            429,
            CNIC_LOOKUPS_EXHAUSTED,
            "of this CNIC",
            "Too many look-ups of this CNIC",
            _cnic_from_two_addresses,
        ),
        (
            503,
            SERVICE_UNAVAILABLE,
            "database",
            "try again",
            _call("GET", ELIGIBILITY, on="database-away"),
        ),
        (413, BODY_TOO_LARGE, "larger", "limited to", _call("GET", ELIGIBILITY, content=BIG)),
    ],
    "POST /v1/otp": [
        (
            400,
            NOT_JSON,
            "not JSON",
            "line 1, column 2",
            _call("POST", "/v1/otp", content=b"{no", headers=JSON),
        ),
        (
            413,
            BODY_TOO_LARGE,
            "larger",
            "limited to",
            _call("POST", "/v1/otp", content=BIG, headers=JSON),
        ),
        (
            415,
            JSON_REQUIRED,
            "application/json",
            "Send JSON",
            _call("POST", "/v1/otp", data={"cnic": ELIGIBLE}),
        ),
        (
            422,
            NOT_A_CNIC,
            "CNIC",
            "A CNIC is 13 digits",
            _call("POST", "/v1/otp", json={"cnic": "12345"}),
        ),
        (
            422,
            INVALID_REQUEST,
            "errors",
            "not valid",
            _call("POST", "/v1/otp", json={**OTP, "extra": 1}),
        ),
        (
            401,
            INVALID_API_KEY,
            "X-API-Key",
            "X-API-Key",
            _call("POST", "/v1/otp", headers=BAD_KEY, json=OTP),
        ),
        (
            429,
            CODE_RECENTLY_SENT,
            "code was sent",
            "A code was sent recently",
            _again("POST", "/v1/otp", json=OTP),
        ),
        (
            429,
            TOO_MANY_CODES,
            "as many codes",
            "Too many codes for this CNIC this hour",
            _too_many_codes,
        ),
        (
            429,
            RATE_LIMITED,
            "quota",
            "Too many requests",
            _again("POST", "/v1/otp", on="ip-quota-1", json=OTP),
        ),
        (
            503,
            VERIFICATION_UNAVAILABLE,
            "verification",
            "Verification",
            _call("POST", "/v1/otp", on="redis-away", json=OTP),
        ),
        (
            503,
            SERVICE_UNAVAILABLE,
            "database",
            "try again",
            _call("POST", "/v1/otp", on="database-away", json=OTP),
        ),
    ],
    "POST /v1/otp/verify": [
        (401, WRONG_CODE, "code is wrong", "Wrong code", _wrong_code),
        (401, WRONG_CODE, "tries_left", "no tries left", _last_wrong_code),
        (401, CODE_EXPIRED, "expired", "expired", _call("POST", VERIFY, json=CODE)),
        (
            401,
            INVALID_API_KEY,
            "X-API-Key",
            "X-API-Key",
            _call("POST", VERIFY, headers=BAD_KEY, json=CODE),
        ),
        (429, TOO_MANY_WRONG_CODES, "wrong codes", "Too many wrong codes", _too_many_wrong_codes),
        (
            429,
            RATE_LIMITED,
            "quota",
            "Too many requests",
            _again("POST", VERIFY, on="ip-quota-1", json=CODE),
        ),
        (
            503,
            VERIFICATION_UNAVAILABLE,
            "verification",
            "Verification",
            _call("POST", VERIFY, on="redis-away", json=CODE),
        ),
        # Only a call with a partner key reads the database here (to check the key).
        (
            503,
            SERVICE_UNAVAILABLE,
            "database",
            "try again",
            _call("POST", VERIFY, on="database-away", headers=BAD_KEY, json=CODE),
        ),
        (
            400,
            NOT_JSON,
            "not JSON",
            "line 1",
            _call("POST", VERIFY, content=b'{"code": }', headers=JSON),
        ),
        (
            415,
            JSON_REQUIRED,
            "application/json",
            "Send JSON",
            _call("POST", VERIFY, content=b"code=1"),
        ),
        (
            422,
            INVALID_REQUEST,
            "errors",
            "not valid",
            _call("POST", VERIFY, json={"code": "123456"}),
        ),
        (
            413,
            BODY_TOO_LARGE,
            "larger",
            "limited to",
            _call("POST", VERIFY, content=BIG, headers=JSON),
        ),
    ],
    "POST /v1/me/grievances": [
        (
            400,
            NOT_JSON,
            "not JSON",
            "line 1",
            _mine("POST", GRIEVANCES, content=b"{", headers=JSON),
        ),
        (
            413,
            BODY_TOO_LARGE,
            "larger",
            "limited to",
            _mine("POST", GRIEVANCES, content=BIG, headers=JSON),
        ),
        (
            415,
            JSON_REQUIRED,
            "application/json",
            "Send JSON",
            _mine("POST", GRIEVANCES, data=COMPLAINT),
        ),
        (
            422,
            INVALID_REQUEST,
            "errors",
            "not valid",
            _mine("POST", GRIEVANCES, json={**COMPLAINT, "cnic": ""}),
        ),
    ],
    "GET /v1/me/grievances/{ticket_id}": [
        (
            404,
            GRIEVANCE_NOT_FOUND,
            "ticket id",
            "No such grievance",
            _mine("GET", f"{GRIEVANCES}/G-7K3M9Q"),
        ),
    ],
}
#: What every call that needs a bearer token answers, with its body if it takes one.
for _operation, _body in (
    ("GET /v1/me", {}),
    ("GET /v1/me/payments", {}),
    ("GET /v1/me/grievances", {}),
    ("POST /v1/me/grievances", {"json": COMPLAINT}),
    ("GET /v1/me/grievances/{ticket_id}", {}),
):
    _method, _path = _operation.split(" ")
    _path = _path.replace("{ticket_id}", "G-7K3M9Q")
    ERRORS.setdefault(_operation, []).extend(
        [
            (
                401,
                TOKEN_REQUIRED,
                "no bearer token",
                "bearer token",
                _call(_method, _path, **_body),
            ),
            (
                401,
                TOKEN_INVALID,
                "expired",
                "expired",
                _call(_method, _path, headers=NOT_A_TOKEN, **_body),
            ),
            (
                401,
                INVALID_API_KEY,
                "X-API-Key",
                "X-API-Key",
                _mine(_method, _path, headers=BAD_KEY, **_body),
            ),
            (
                429,
                RATE_LIMITED,
                "quota",
                "Too many requests",
                _again(_method, _path, on="ip-quota-1", bearer=True, **_body),
            ),
            (
                503,
                VERIFICATION_UNAVAILABLE,
                "tokens cannot be checked",
                "Verification",
                _mine(_method, _path, on="redis-away", **_body),
            ),
            (
                503,
                SERVICE_UNAVAILABLE,
                "database",
                "try again",
                _mine(_method, _path, on="database-away", **_body),
            ),
        ]
    )
    if _method == "GET":
        ERRORS[_operation].append(
            (413, BODY_TOO_LARGE, "larger", "limited to", _mine(_method, _path, content=BIG))
        )

CASES = [(operation, *error) for operation, errors in ERRORS.items() for error in errors]


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    from api.main import create_app

    return create_app(Settings(_env_file=None)).openapi()  # type: ignore[call-arg]


def _ids() -> list[str]:
    seen: dict[str, int] = {}
    ids = []
    for operation, status, _, names, _, _ in CASES:
        case = f"{operation} {status} {names}"
        seen[case] = seen.get(case, 0) + 1
        ids.append(case if seen[case] == 1 else f"{case} #{seen[case]}")
    return ids


#: The members every problem may carry (RFC 9457 §3.1); any other is its type's field.
STANDARD_MEMBERS = {"type", "title", "status", "detail", "instance"}


def documented_types(response: dict[str, Any]) -> list[str]:
    """The problem types a documented error status lists (the `enum` on its `type`)."""
    schema = response["content"]["application/problem+json"]["schema"]
    assert schema["allOf"][0] == {"$ref": "#/components/schemas/Problem"}
    return list(schema["allOf"][1]["properties"]["type"]["enum"])


@pytest.mark.parametrize(
    ("operation", "status", "type_", "names", "detail", "drive"), CASES, ids=_ids()
)
async def test_each_error_a_call_answers_is_documented_with_its_cause(
    calls: Calls,
    spec: dict[str, Any],
    operation: str,
    status: int,
    type_: str,
    names: str,
    detail: str,
    drive: Drive,
):
    response = await drive(calls)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert detail in problem["detail"]
    # What a front end branches on, and the members it words the answer with: its type's, no
    # other (none of them personal data).
    kind = PROBLEM_TYPES[type_]
    assert (problem["type"], problem["title"], kind.status) == (type_, kind.title, status)
    assert set(problem) - STANDARD_MEMBERS == set(kind.fields), problem
    if status in (429, 503):
        assert int(response.headers["retry-after"]) > 0
        assert problem["retry_after"] == int(response.headers["retry-after"])
    method, path = operation.split(" ")
    documented = spec["paths"][path][method.lower()]["responses"].get(str(status))
    assert documented, f"{operation} answers {status} undocumented"
    assert type_ in documented_types(documented), documented
    assert names.lower() in documented["description"].lower(), documented["description"]
    assert f"`{kind.name}`" in documented["description"]
    if status in (429, 503):
        assert "Retry-After" in documented["headers"]


#: Driven in tests/api/test_problem_types.py: the load-shedding answer needs a stalled database.
DRIVEN_ELSEWHERE = {SERVICE_BUSY}


def test_every_documented_problem_is_driven(spec: dict[str, Any]):
    """Each type each status of each `/v1` operation lists is one a case above answers: none is
    listed that no call can answer, nor documented here and left untried."""
    documented = {
        (f"{method.upper()} {path}", int(status), type_)
        for path, methods in spec["paths"].items()
        if path.startswith("/v1/")
        for method, operation in methods.items()
        for status, response in operation["responses"].items()
        if status.startswith(("4", "5"))
        for type_ in documented_types(response)
        if type_ not in DRIVEN_ELSEWHERE
    }
    driven = {(operation, status, type_) for operation, status, type_, *_ in CASES}
    assert documented == driven


def test_every_v1_operation_is_driven(spec: dict[str, Any]):
    """A new `/v1` operation gets its cases here, so its errors are checked too."""
    operations = {
        f"{method.upper()} {path}"
        for path, methods in spec["paths"].items()
        if path.startswith("/v1/")
        for method in methods
    }
    assert operations == {operation for operation, *_ in CASES}


def test_no_v1_error_is_declared_without_a_problem_schema(spec: dict[str, Any]):
    for path, methods in spec["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in methods.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert set(response["content"]) == {"application/problem+json"}, (
                        method,
                        path,
                        status,
                    )
