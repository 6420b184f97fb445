"""Every `/v1` problem has a stable `type` a partner's front end branches on (RFC 9457 §3.1.1),
to say what went wrong in its user's language: the types tests/api/test_documented_errors.py
does not drive are driven here, the first three published keep their values, and the README's
table lists every type with its status and fields."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from api.problems import (
    INTERNAL_ERROR,
    INVALID_API_KEY,
    NOT_A_CNIC,
    PROBLEM_BASE,
    PROBLEM_TYPES,
    RATE_LIMITED,
    SERVICE_BUSY,
)
from api.surge import get_surge_settings
from tests.api.test_documented_errors import documented_types
from tests.conftest import ELIGIBLE

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_types_first_published_keep_their_values():
    assert NOT_A_CNIC == "https://rabta.example/problems/not-a-cnic"
    assert RATE_LIMITED == "https://rabta.example/problems/rate-limited"
    assert INVALID_API_KEY == "https://rabta.example/problems/invalid-api-key"
    assert all(uri.startswith(PROBLEM_BASE) for uri in PROBLEM_TYPES)


async def test_a_read_not_answered_in_time_is_service_busy(client, registry, answer_within_300_ms):
    """The load-shedding gate's 503 (a stalled database here; a full gate answers the same)."""
    if registry.engine.dialect.name != "postgresql":
        pytest.skip("the stall is a PostgreSQL table lock")
    async with registry.engine.begin() as locker:
        await locker.execute(text("LOCK TABLE persons, households IN ACCESS EXCLUSIVE MODE"))
        async with asyncio.timeout(5):
            response = await client.get(f"/v1/eligibility/{ELIGIBLE}")
    assert response.status_code == 503
    problem = response.json()
    retry_after = get_surge_settings().retry_after
    assert problem == {
        "type": SERVICE_BUSY,
        "title": "Service Unavailable",
        "status": 503,
        "detail": "Too busy right now; try again in a moment.",
        "retry_after": retry_after,
    }
    assert response.headers["retry-after"] == str(retry_after)
    spec = (await client.get("/openapi.json")).json()
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            if path.startswith("/v1/"):
                assert SERVICE_BUSY in documented_types(operation["responses"]["503"]), method
                assert "`service-busy`" in operation["responses"]["503"]["description"]


async def test_an_unexpected_error_is_internal_error(app, registry):
    async def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/v1/broken-for-the-test", broken)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://127.0.0.1:8000",
    ) as http:
        response = await http.get("/v1/broken-for-the-test")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": INTERNAL_ERROR,
        "title": "Internal Server Error",
        "status": 500,
        "detail": "Something went wrong on our side; it has been logged.",
    }


def _readme_table() -> dict[str, tuple[int, set[str]]]:
    """The README's table of problem types: each name's status and fields."""
    rest = README.read_text(encoding="utf-8").split("### The REST API", 1)[1].split("\n### ", 1)[0]
    rows: dict[str, tuple[int, set[str]]] = {}
    for line in rest.splitlines():
        cells = [cell.strip() for cell in line.strip()[1:-1].split("|")]
        if not line.startswith("|") or len(cells) != 4 or not cells[1].isdigit():
            continue
        name = cells[0].strip("`")
        assert name not in rows, f"{name} twice in the README's table"
        rows[name] = (int(cells[1]), set(re.findall(r"`(\w+)`", cells[3])))
    return rows


def test_the_readme_lists_every_problem_type_with_its_status_and_fields():
    expected = {kind.name: (kind.status, set(kind.fields)) for kind in PROBLEM_TYPES.values()}
    assert _readme_table() == expected
