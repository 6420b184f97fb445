"""RateLimiter: per-scope limits, hashed keys, shared counts, one refusal reply per window."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import REGISTRY

from api.ratelimit import RateLimiter
from api.settings import Settings
from tests.conftest import ELIGIBLE, ELIGIBLE_PHONE


@pytest.mark.parametrize(
    ("scope", "identity", "allowed"),
    [
        ("sender", ELIGIBLE_PHONE, 3),
        ("telegram", "123456789", 3),
        ("ip", "203.0.113.7", 3),
        ("cnic", ELIGIBLE, 4),
        ("otp", ELIGIBLE, 2),
        ("partner", "1", 5),
    ],
)
async def test_each_scope_enforces_its_configured_limit(
    limiter: RateLimiter, scope: str, identity: str, allowed: int
):
    for n in range(allowed):
        decision = await limiter.hit(scope, identity)
        assert decision.allowed, f"hit {n + 1} of {allowed}"
        assert decision.limit == allowed
        assert decision.remaining == allowed - n - 1
        assert decision.retry_after == 0
        assert not decision.degraded
    refused = await limiter.hit(scope, identity)
    assert not refused.allowed
    assert refused.remaining == 0
    assert 1 <= refused.retry_after <= 60
    assert refused.reset_at == pytest.approx(time.time() + refused.retry_after, abs=2)
    # Another identity in the same scope has its own budget.
    assert (await limiter.hit(scope, identity + "0")).allowed


async def test_agent_scope_default_and_explicit_limit(limiter: RateLimiter):
    assert (await limiter.hit("agent", "agent-7")).limit == 300
    assert [(await limiter.hit("partner", "9", "2/minute")).allowed for _ in range(3)] == [
        True,
        True,
        False,
    ]


async def test_scopes_do_not_share_counts(limiter: RateLimiter):
    for _ in range(2):
        await limiter.hit("otp", ELIGIBLE)
    assert not (await limiter.hit("otp", ELIGIBLE)).allowed
    assert (await limiter.hit("cnic", ELIGIBLE)).allowed


async def test_unknown_scope_is_a_programming_error(limiter: RateLimiter):
    with pytest.raises(ValueError, match="scope"):
        await limiter.hit("nonsense", "x")


async def test_peek_does_not_consume(limiter: RateLimiter):
    for _ in range(5):
        peek = await limiter.test("sender", ELIGIBLE_PHONE)
        assert peek.allowed and peek.remaining == 3
    for _ in range(3):
        await limiter.hit("sender", ELIGIBLE_PHONE)
    peek = await limiter.test("sender", ELIGIBLE_PHONE)
    assert not peek.allowed and peek.retry_after >= 1


async def test_keys_hold_no_cnic_or_phone(limiter: RateLimiter, redis):
    await limiter.hit("cnic", ELIGIBLE)
    await limiter.hit("otp", ELIGIBLE)
    await limiter.hit("sender", ELIGIBLE_PHONE)
    await limiter.first_refusal("sender", ELIGIBLE_PHONE, 60)
    keys = [k if isinstance(k, str) else k.decode() for k in await redis.keys("*")]
    ours = [k for k in keys if k.startswith("rabta:rl")]
    assert len(ours) == 4
    for key in ours:
        for secret in (ELIGIBLE, ELIGIBLE[:5], ELIGIBLE_PHONE, ELIGIBLE_PHONE[1:], "3001234567"):
            assert secret not in key
    assert any(limiter.identity_key("cnic", ELIGIBLE) in key for key in ours)


async def test_identity_hash_is_keyed(rl_settings: Settings, limiter: RateLimiter):
    other = RateLimiter(rl_settings.model_copy(update={"secret_key": "x" * 40}), None)
    try:
        assert other.identity_key("cnic", ELIGIBLE) != limiter.identity_key("cnic", ELIGIBLE)
        assert len(limiter.identity_key("cnic", ELIGIBLE)) == 32
    finally:
        await other.close()


async def test_two_limiters_on_one_redis_share_counts(rl_settings: Settings, limiter: RateLimiter):
    """Two workers: what one counts, the other sees."""
    worker_b = RateLimiter(rl_settings, rl_settings.redis_url)
    try:
        assert (await limiter.hit("sender", ELIGIBLE_PHONE)).allowed
        assert (await worker_b.hit("sender", ELIGIBLE_PHONE)).allowed
        assert (await limiter.hit("sender", ELIGIBLE_PHONE)).remaining == 0
        assert not (await worker_b.hit("sender", ELIGIBLE_PHONE)).allowed
        assert not (await limiter.hit("sender", ELIGIBLE_PHONE)).allowed
    finally:
        await worker_b.close()


async def test_first_refusal_once_per_window(rl_settings: Settings, limiter: RateLimiter):
    assert await limiter.first_refusal("sender", ELIGIBLE_PHONE, 60)
    assert not await limiter.first_refusal("sender", ELIGIBLE_PHONE, 60)
    assert not await limiter.first_refusal("sender", ELIGIBLE_PHONE, 60)
    # Shared: another worker does not send a second reply either.
    worker_b = RateLimiter(rl_settings, rl_settings.redis_url)
    try:
        assert not await worker_b.first_refusal("sender", ELIGIBLE_PHONE, 60)
    finally:
        await worker_b.close()
    # Per identity and per scope.
    assert await limiter.first_refusal("sender", "+923451112233", 60)
    assert await limiter.first_refusal("telegram", ELIGIBLE_PHONE, 60)


async def test_first_refusal_window_expires(limiter: RateLimiter):
    assert await limiter.first_refusal("sender", ELIGIBLE_PHONE, 1)
    assert not await limiter.first_refusal("sender", ELIGIBLE_PHONE, 1)
    await asyncio.sleep(1.1)
    assert await limiter.first_refusal("sender", ELIGIBLE_PHONE, 1)


async def test_hits_are_counted_in_metrics(limiter: RateLimiter):
    def count(outcome: str) -> float:
        labels = {"scope": "otp", "outcome": outcome}
        return REGISTRY.get_sample_value("rabta_ratelimit_hits_total", labels) or 0.0

    allowed, limited = count("allowed"), count("limited")
    for _ in range(3):
        await limiter.hit("otp", ELIGIBLE)
    assert count("allowed") == allowed + 2
    assert count("limited") == limited + 1
