"""REST rate limits: per client IP, a partner's own quota with X-API-Key, problem documents."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy import update

from api.db import Database
from api.eligibility import routes as eligibility_routes
from api.partners import create_partner
from api.ratelimit import RateLimiter
from api.ratelimit.http import limit_request
from api.registry.models import Partner
from api.settings import Settings
from tests.conftest import NOT_FOUND

probe = APIRouter(prefix="/v1", dependencies=[Depends(limit_request)])


@probe.get("/rl-probe")
async def rl_probe() -> dict[str, bool]:
    return {"ok": True}


@pytest.fixture
async def limited_app(rl_settings: Settings, db: Database, redis: object) -> AsyncIterator[FastAPI]:
    """The app with a rate-limited probe route and the real eligibility route behind the limit,
    and the limiter created in the lifespan as the lead will wire it."""
    from api.main import create_app

    application = create_app(rl_settings)
    application.include_router(probe)
    application.include_router(
        eligibility_routes.router, prefix="/limited", dependencies=[Depends(limit_request)]
    )
    async with application.router.lifespan_context(application):
        application.state.rate_limiter = RateLimiter(rl_settings, rl_settings.redis_url)
        try:
            yield application
        finally:
            await application.state.rate_limiter.close()


@pytest.fixture
async def http(limited_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=limited_app), base_url="http://127.0.0.1:8000"
    ) as client:
        yield client


async def _partner(db: Database, name: str, quota: str | None) -> str:
    async with db.transaction() as session:
        return await create_partner(session, name=name, quota=quota)


def _assert_limited(response: httpx.Response, limit: int) -> None:
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 429 and problem["title"] == "Too Many Requests"
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert response.headers["RateLimit-Limit"] == str(limit)
    assert response.headers["RateLimit-Remaining"] == "0"
    assert 1 <= int(response.headers["RateLimit-Reset"]) <= 60


async def test_ip_quota_then_429_with_retry_after(http: httpx.AsyncClient):
    for remaining in (2, 1, 0):
        response = await http.get("/v1/rl-probe")
        assert response.status_code == 200
        assert response.headers["RateLimit-Limit"] == "3"
        assert response.headers["RateLimit-Remaining"] == str(remaining)
        assert 0 < int(response.headers["RateLimit-Reset"]) <= 60
    _assert_limited(await http.get("/v1/rl-probe"), 3)


async def test_real_route_behind_the_limit(http: httpx.AsyncClient, registry: Database):
    for _ in range(3):
        response = await http.get(f"/limited/v1/eligibility/{NOT_FOUND}")
        assert response.status_code == 200 and response.json()["status"] == "not_found"
    _assert_limited(await http.get(f"/limited/v1/eligibility/{NOT_FOUND}"), 3)


async def test_partner_key_has_its_own_quota(http: httpx.AsyncClient, db: Database):
    key = await _partner(db, "Sehat portal", "6/minute")
    for _ in range(3):
        assert (await http.get("/v1/rl-probe")).status_code == 200
    _assert_limited(await http.get("/v1/rl-probe"), 3)

    headers = {"X-API-Key": key}
    for remaining in range(5, -1, -1):
        response = await http.get("/v1/rl-probe", headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["RateLimit-Limit"] == "6"
        assert response.headers["RateLimit-Remaining"] == str(remaining)
    _assert_limited(await http.get("/v1/rl-probe", headers=headers), 6)
    # The IP is still limited on its own.
    _assert_limited(await http.get("/v1/rl-probe"), 3)


async def test_partner_created_without_quota_has_the_model_default(
    http: httpx.AsyncClient, db: Database
):
    key = await _partner(db, "IVR", None)  # Partner.quota's default: 1000/minute
    response = await http.get("/v1/rl-probe", headers={"X-API-Key": key})
    assert response.status_code == 200
    assert response.headers["RateLimit-Limit"] == "1000"


@pytest.mark.parametrize("bad", ["rbt_not-a-real-key", "", "Bearer abc", "x" * 500])
async def test_bad_key_is_401_problem(http: httpx.AsyncClient, db: Database, bad: str):
    await _partner(db, "Sehat portal", None)
    response = await http.get("/v1/rl-probe", headers={"X-API-Key": bad})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 401 and problem["title"] == "Invalid API key"
    if bad:
        assert bad not in response.text


async def test_inactive_partner_is_refused(http: httpx.AsyncClient, db: Database):
    key = await _partner(db, "Old portal", None)
    async with db.transaction() as session:
        await session.execute(update(Partner).values(active=False))
    assert (await http.get("/v1/rl-probe", headers={"X-API-Key": key})).status_code == 401


async def test_guessing_keys_counts_against_the_ip(http: httpx.AsyncClient):
    for n in range(3):
        response = await http.get("/v1/rl-probe", headers={"X-API-Key": f"rbt_guess{n}"})
        assert response.status_code == 401
    _assert_limited(await http.get("/v1/rl-probe", headers={"X-API-Key": "rbt_guess9"}), 3)


async def test_x_forwarded_for_is_not_trusted(http: httpx.AsyncClient):
    for n in range(3):
        spoofed = {"X-Forwarded-For": f"198.51.100.{n}"}
        assert (await http.get("/v1/rl-probe", headers=spoofed)).status_code == 200
    _assert_limited(await http.get("/v1/rl-probe", headers={"X-Forwarded-For": "198.51.100.9"}), 3)


async def test_routes_without_the_dependency_are_not_limited(http: httpx.AsyncClient):
    for _ in range(5):
        response = await http.get("/healthz")
        assert response.status_code == 200
        assert "RateLimit-Limit" not in response.headers
