"""REST rate limits: per client IP, a partner's own quota with X-API-Key, problem documents."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy import update

from api.bot_services import lookup_hits
from api.db import Database
from api.identity import mask_cnic
from api.partners import create_partner
from api.ratelimit import RateLimiter
from api.ratelimit.http import PartnerIdentity, PartnerKeyCache, limit_request
from api.registry.models import Partner
from api.settings import Settings
from tests.conftest import ELIGIBLE, NOT_FOUND, app_client, running_app

probe = APIRouter(prefix="/v1", dependencies=[Depends(limit_request)])


@probe.get("/rl-probe")
async def rl_probe() -> dict[str, bool]:
    return {"ok": True}


@pytest.fixture
async def limited_app(rl_settings: Settings, db: Database, redis: object) -> AsyncIterator[FastAPI]:
    """The app with a rate-limited probe route beside the real eligibility route, and a
    limiter on the test Redis as the lifespan would create it."""
    async with running_app(rl_settings) as application:
        application.include_router(probe)
        application.state.rate_limiter = RateLimiter(rl_settings, rl_settings.redis_url)
        try:
            yield application
        finally:
            await application.state.rate_limiter.close()


@pytest.fixture
async def http(limited_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(limited_app) as client:
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
    """The look-up counts its caller itself (with the CNIC, in one round trip): 3 a minute."""
    for remaining in (2, 1, 0):
        response = await http.get(f"/v1/eligibility/{NOT_FOUND}")
        assert response.status_code == 200 and response.json()["status"] == "not_found"
        assert response.headers["RateLimit-Limit"] == "3"
        assert response.headers["RateLimit-Remaining"] == str(remaining)
    _assert_limited(await http.get(f"/v1/eligibility/{NOT_FOUND}"), 3)


async def test_text_that_is_not_a_cnic_still_counts_against_the_caller(http: httpx.AsyncClient):
    for _ in range(3):
        assert (await http.get("/v1/eligibility/not-a-cnic")).status_code == 422
    _assert_limited(await http.get("/v1/eligibility/not-a-cnic"), 3)


async def test_a_look_up_with_a_wrong_key_counts_the_ip_and_no_cnic(
    http: httpx.AsyncClient, limited_app: FastAPI
):
    response = await http.get(f"/v1/eligibility/{ELIGIBLE}", headers={"X-API-Key": "rbt_wrong"})
    assert response.status_code == 401
    limiter: RateLimiter = limited_app.state.rate_limiter
    assert (await limiter.test("ip", "127.0.0.1")).remaining == 2
    assert (await limiter.test("cnic", ELIGIBLE)).remaining == 4


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


async def test_a_revoked_key_is_refused_once_a_worker_stops_trusting_it(
    http: httpx.AsyncClient, db: Database, limited_app: FastAPI
):
    """README: a revoked key is refused by every API worker within 60 s, the time a worker
    trusts a key it has checked (shortened here to a fifth of a second)."""
    limited_app.state.partner_keys = PartnerKeyCache(ttl=0.2)
    key = await _partner(db, "Old portal", None)
    headers = {"X-API-Key": key}
    assert (await http.get("/v1/rl-probe", headers=headers)).status_code == 200
    async with db.transaction() as session:
        await session.execute(update(Partner).values(active=False))
    assert (await http.get("/v1/rl-probe", headers=headers)).status_code == 200  # still trusted
    await asyncio.sleep(0.25)
    assert (await http.get("/v1/rl-probe", headers=headers)).status_code == 401


def test_the_trusted_keys_stay_few() -> None:
    cache = PartnerKeyCache(max_entries=2)
    partners = [PartnerIdentity(id=n, name=f"p{n}", quota="5/minute") for n in range(3)]
    for n, partner in enumerate(partners):
        cache.put(f"digest{n}", partner)
    kept = [cache.get(f"digest{n}") for n in range(3)]
    assert kept[2] == partners[2]  # the newest is trusted
    assert sum(p is not None for p in kept) <= 2


async def test_a_quota_edited_into_nonsense_is_the_default_quota(
    http: httpx.AsyncClient, db: Database, caplog: pytest.LogCaptureFixture
):
    key = await _partner(db, "Hand-edited", "100/minute")
    async with db.transaction() as session:
        await session.execute(update(Partner).values(quota="lots"))
    response = await http.get("/v1/rl-probe", headers={"X-API-Key": key})
    assert response.status_code == 200, response.text
    assert response.headers["RateLimit-Limit"] == "5"  # RABTA_LIMIT_PARTNER
    assert "partner 'Hand-edited' has an invalid quota 'lots'; using the default" in caplog.text


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


async def test_rest_look_ups_count_the_cnic_the_bot_counts(
    http: httpx.AsyncClient, db: Database, registry: Database, limited_app: FastAPI
):
    """SPEC §4: 4 look-ups of one CNIC a minute here (20 a day by default) from all senders: a
    partner's REST look-ups use up the CNIC's budget, the 5th is refused with Retry-After and a
    body that does not say whether the CNIC is registered, and then the bot's look-up of that
    CNIC (a Telegram user's) is refused too."""
    headers = {"X-API-Key": await _partner(db, "Sehat portal", "50/minute")}
    for _ in range(4):
        response = await http.get(f"/v1/eligibility/{ELIGIBLE}", headers=headers)
        assert response.status_code == 200, response.text
    refused = await http.get(f"/v1/eligibility/{ELIGIBLE}", headers=headers)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # The caller's own quota is reported as it stands: this refusal was the CNIC's.
    assert refused.headers["RateLimit-Limit"] == "50"
    assert refused.headers["RateLimit-Remaining"] == "45"
    problem = refused.json()
    assert problem["status"] == 429 and problem["title"] == "Too Many Requests"
    assert "cnic_masked" not in problem and "eligible" not in refused.text
    # The path it names holds the CNIC masked, as a 200 would (SPEC §3).
    assert problem["instance"] == f"/v1/eligibility/{mask_cnic(ELIGIBLE)}"
    assert ELIGIBLE not in refused.text

    # An unregistered CNIC is refused alike after its 4: nothing tells the two apart.
    for _ in range(4):
        assert (await http.get(f"/v1/eligibility/{NOT_FOUND}", headers=headers)).status_code == 200
    unknown = await http.get(f"/v1/eligibility/{NOT_FOUND}", headers=headers)
    assert unknown.status_code == 429
    assert _without_timing(unknown.json()) == _without_timing(problem)

    bot = await limited_app.state.rate_limiter.hit_in_turn(
        lookup_hits("telegram", "123456789", ELIGIBLE)
    )
    assert [d.allowed for d in bot] == [True, False]


def _without_timing(problem: dict[str, Any]) -> dict[str, Any]:
    """A problem document less what differs by CNIC and by the second: the path and the wait."""
    return {**problem, "instance": None, "detail": problem["detail"].split(";")[0]}


async def test_a_refused_caller_spends_nothing_of_the_cnic(
    http: httpx.AsyncClient, registry: Database, limited_app: FastAPI
):
    """The caller's limit is counted first: the IP's 4th request (over its 3) leaves the CNIC's
    window at 3 of 4, and one more look-up of it from elsewhere still passes."""
    for _ in range(3):
        assert (await http.get(f"/v1/eligibility/{ELIGIBLE}")).status_code == 200
    _assert_limited(await http.get(f"/v1/eligibility/{ELIGIBLE}"), 3)
    limiter: RateLimiter = limited_app.state.rate_limiter
    assert (await limiter.test("cnic", ELIGIBLE)).remaining == 1


async def test_an_anonymous_callers_look_ups_are_a_senders(
    http: httpx.AsyncClient,
    db: Database,
    registry: Database,
    limited_app: FastAPI,
    rl_settings: Settings,
):
    """SPEC §4: look-ups are limited per sender, an IP among them (`RABTA_LIMIT_SENDER`, 3 a
    minute here), under a per-IP limit wide enough not to be the one refusing; the refusal
    says so, with Retry-After, spends nothing of the CNIC's, and a partner's quota is its own."""
    wide = rl_settings.model_copy(update={"limit_ip": "100/minute"})
    await limited_app.state.rate_limiter.close()
    limited_app.state.rate_limiter = RateLimiter(wide, wide.redis_url)
    for cnic in (ELIGIBLE, NOT_FOUND, ELIGIBLE):
        assert (await http.get(f"/v1/eligibility/{cnic}")).status_code == 200
    refused = await http.get(f"/v1/eligibility/{NOT_FOUND}")
    assert refused.status_code == 429
    assert refused.json()["detail"].startswith("Too many look-ups from this address;")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Limit"] == "100"  # the IP's own quota, as it stands
    limiter: RateLimiter = limited_app.state.rate_limiter
    assert (await limiter.test("cnic", NOT_FOUND)).remaining == 3
    # Another address is another sender; a partner's look-ups count against its quota alone.
    async with app_client(limited_app, peer="198.51.100.77") as other:
        assert (await other.get(f"/v1/eligibility/{NOT_FOUND}")).status_code == 200
    headers = {"X-API-Key": await _partner(db, "Sehat portal", "50/minute")}
    assert (await http.get(f"/v1/eligibility/{NOT_FOUND}", headers=headers)).status_code == 200


@pytest.mark.parametrize("bad", ["3520212345671000", "9520212345671", "35202123456", "۳۵۲۰۲"])
async def test_text_that_is_not_a_cnic_counts_against_no_cnic(
    http: httpx.AsyncClient, redis: Any, bad: str
):
    response = await http.get(f"/v1/eligibility/{bad}")
    assert response.status_code == 422
    assert [key async for key in redis.scan_iter(match="rabta:rl:LIMITER/cnic/*")] == []


async def test_an_ipv6_client_gets_one_quota_for_its_whole_64(limited_app: FastAPI):
    """Any IPv6 host holds a /64 and may use each of its addresses: a new address must not be a
    new quota. Another /64 is another client."""
    for n in range(3):
        async with app_client(limited_app, peer=f"2001:db8:1:2::{n + 1}") as client:
            assert (await client.get("/v1/rl-probe")).status_code == 200
    async with app_client(limited_app, peer="2001:db8:1:2:ffff:ffff:ffff:fffe") as client:
        _assert_limited(await client.get("/v1/rl-probe"), 3)
    async with app_client(limited_app, peer="2001:db8:1:3::1") as client:
        assert (await client.get("/v1/rl-probe")).status_code == 200


async def test_an_ipv4_mapped_address_is_its_ipv4_client(limited_app: FastAPI):
    for _ in range(3):
        async with app_client(limited_app, peer="198.51.100.7") as client:
            assert (await client.get("/v1/rl-probe")).status_code == 200
    async with app_client(limited_app, peer="::ffff:198.51.100.7") as client:
        _assert_limited(await client.get("/v1/rl-probe"), 3)
