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


async def test_hits_in_turn_count_on_the_keys_limits_uses(limiter: RateLimiter):
    """One round trip counts both hits on the very windows `hit` and `test` read."""
    decisions = await limiter.hit_in_turn([("sender", ELIGIBLE_PHONE), ("cnic", ELIGIBLE)])
    assert [(d.allowed, d.limit, d.degraded) for d in decisions] == [
        (True, 3, False),
        (True, 4, False),
    ]
    assert (await limiter.test("sender", ELIGIBLE_PHONE)).remaining == 2
    assert (await limiter.test("cnic", ELIGIBLE)).remaining == 3
    # And the other way round: what `hit` counted, the script sees.
    await limiter.hit("sender", ELIGIBLE_PHONE)
    await limiter.hit("sender", ELIGIBLE_PHONE)
    [refused] = await limiter.hit_in_turn([("sender", ELIGIBLE_PHONE), ("cnic", ELIGIBLE)])
    assert not refused.allowed and 1 <= refused.retry_after <= 60


async def test_hits_in_turn_stop_at_the_first_refusal(limiter: RateLimiter):
    """A sender over their limit spends nothing of the CNIC's; a refused CNIC still counted the
    sender, as two `hit` calls in turn would."""
    other_sender = "+923450000001"
    for _ in range(3):
        assert all(d.allowed for d in await limiter.hit_in_turn([("sender", ELIGIBLE_PHONE)]))
    refused = await limiter.hit_in_turn([("sender", ELIGIBLE_PHONE), ("cnic", ELIGIBLE)])
    assert [d.allowed for d in refused] == [False]
    assert refused[0].retry_after >= 1
    assert (await limiter.test("cnic", ELIGIBLE)).remaining == 4, "the CNIC was not counted"

    for n in range(4):
        decisions = await limiter.hit_in_turn([("sender", f"+92345000002{n}"), ("cnic", ELIGIBLE)])
        assert [d.allowed for d in decisions] == [True, True]
    decisions = await limiter.hit_in_turn([("sender", other_sender), ("cnic", ELIGIBLE)])
    assert [d.allowed for d in decisions] == [True, False]
    assert 1 <= decisions[1].retry_after <= 60
    assert decisions[1].reset_at == pytest.approx(time.time() + decisions[1].retry_after, abs=2)
    assert (await limiter.test("sender", other_sender)).remaining == 2, "the sender was counted"


async def test_read_then_hit_counts_only_when_nothing_is_found(limiter: RateLimiter, redis):
    """One round trip reads the caller's keys and counts the hits only when none exists."""
    hits = [("sender", ELIGIBLE_PHONE), ("cnic", ELIGIBLE)]
    reads = ["rabta:test:entry", "rabta:test:state"]
    found = await limiter.read_then_hit_in_turn(reads, hits)
    assert found is not None
    values, decisions = found
    assert values == [None, None]
    assert decisions is not None
    assert [(d.allowed, d.limit, d.degraded) for d in decisions] == [
        (True, 3, False),
        (True, 4, False),
    ]
    assert (await limiter.test("sender", ELIGIBLE_PHONE)).remaining == 2
    assert (await limiter.test("cnic", ELIGIBLE)).remaining == 3

    # Something stored for the caller: it comes back, and nothing is counted.
    await redis.set("rabta:test:state", "{}")
    found = await limiter.read_then_hit_in_turn(reads, hits)
    assert found is not None
    values, decisions = found
    assert decisions is None
    assert values[0] is None and values[1] in (b"{}", "{}")
    assert (await limiter.test("sender", ELIGIBLE_PHONE)).remaining == 2
    assert (await limiter.test("cnic", ELIGIBLE)).remaining == 3

    # Without reads it is `hit_in_turn`, on the same windows, stopping at the first refusal.
    _, decisions = await limiter.read_then_hit_in_turn([], hits) or ([], None)
    assert decisions is not None and [d.allowed for d in decisions] == [True, True]
    await limiter.hit("sender", ELIGIBLE_PHONE)
    _, decisions = await limiter.read_then_hit_in_turn(reads[:1], hits) or ([], None)
    assert decisions is not None and [d.allowed for d in decisions] == [False]
    assert 1 <= decisions[0].retry_after <= 60
    assert (await limiter.test("cnic", ELIGIBLE)).remaining == 2, "the CNIC was not counted"


async def test_read_then_hit_counts_the_first_hits_when_the_first_key_alone_is_found(
    limiter: RateLimiter, redis
):
    """`when_first_found`: the reply cache's entry found beside no conversation counts the
    sender's limit alone; found beside one, or the conversation alone, counts nothing."""
    hits = [("sender", ELIGIBLE_PHONE), ("cnic", ELIGIBLE)]
    reads = ["rabta:test:entry", "rabta:test:state"]
    await redis.set("rabta:test:entry", "answer")
    found = await limiter.read_then_hit_in_turn(reads, hits, when_first_found=1)
    assert found is not None
    values, decisions = found
    assert values[0] in (b"answer", "answer") and values[1] is None
    assert decisions is not None and [(d.allowed, d.limit) for d in decisions] == [(True, 3)]
    assert (await limiter.test("sender", ELIGIBLE_PHONE)).remaining == 2
    assert (await limiter.test("cnic", ELIGIBLE)).remaining == 4, "the CNIC was not counted"

    # More than there are hits: every hit, once.
    _, decisions = await limiter.read_then_hit_in_turn(reads, hits, when_first_found=5) or (
        [],
        None,
    )
    assert decisions is not None and [d.allowed for d in decisions] == [True, True]
    assert (await limiter.test("sender", ELIGIBLE_PHONE)).remaining == 1
    assert (await limiter.test("cnic", ELIGIBLE)).remaining == 3

    # Without `when_first_found`, as before: something was found, nothing counted.
    assert await limiter.read_then_hit_in_turn(reads, hits) == (values, None)
    # Both found, or the second alone: nothing counted.
    await redis.set("rabta:test:state", "{}")
    assert (await limiter.read_then_hit_in_turn(reads, hits, when_first_found=1))[1] is None
    await redis.delete("rabta:test:entry")
    assert (await limiter.read_then_hit_in_turn(reads, hits, when_first_found=1))[1] is None
    assert (await limiter.test("sender", ELIGIBLE_PHONE)).remaining == 1

    # A refusal of the first hit carries its window.
    await redis.delete("rabta:test:state")
    await redis.set("rabta:test:entry", "answer")
    await limiter.hit("sender", ELIGIBLE_PHONE)
    _, decisions = await limiter.read_then_hit_in_turn(reads, hits, when_first_found=1) or (
        [],
        None,
    )
    assert decisions is not None and [d.allowed for d in decisions] == [False]
    assert 1 <= decisions[0].retry_after <= 60


async def test_read_then_hit_writes_first_what_it_is_given(limiter: RateLimiter, redis):
    """`writes` are set before the reads, with their expiry and only where nothing is stored
    (NX), so a read of a key just written finds it, and the hits and their arguments after
    them still line up."""
    hits = [("sender", ELIGIBLE_PHONE), ("cnic", ELIGIBLE)]
    reads = ["rabta:test:entry", "rabta:test:state"]
    await redis.set("rabta:test:kept", "first", ex=30)
    writes = [("rabta:test:other", "other's answer", 60), ("rabta:test:kept", "second", 90)]
    found = await limiter.read_then_hit_in_turn(reads, hits, when_first_found=1, writes=writes)
    assert found is not None
    values, decisions = found
    assert values == [None, None]
    assert decisions is not None and [(d.allowed, d.limit) for d in decisions] == [
        (True, 3),
        (True, 4),
    ]
    assert await redis.get("rabta:test:other") in (b"other's answer", "other's answer")
    assert 55 <= await redis.ttl("rabta:test:other") <= 60
    assert await redis.get("rabta:test:kept") in (b"first", "first"), "NX: not overwritten"
    assert await redis.ttl("rabta:test:kept") <= 30

    # A written key that is also read is found: here the first, so `when_first_found` counts.
    writes = [("rabta:test:entry", "answer", 60)]
    found = await limiter.read_then_hit_in_turn(reads, hits, when_first_found=1, writes=writes)
    assert found is not None
    values, decisions = found
    assert values[0] in (b"answer", "answer") and values[1] is None
    assert decisions is not None and [(d.allowed, d.limit) for d in decisions] == [(True, 3)]
    assert (await limiter.test("sender", ELIGIBLE_PHONE)).remaining == 1
    assert (await limiter.test("cnic", ELIGIBLE)).remaining == 3, "the CNIC was not counted"


async def test_read_then_hit_leaves_an_unreachable_redis_to_the_caller(rl_settings: Settings):
    """No Redis: nothing read, nothing counted (None); the caller's `hit_in_turn` then counts
    in this process, as it would have without the read."""
    limiter = RateLimiter(rl_settings, "redis://127.0.0.1:1/0", retry_redis_after=60)
    try:
        hits = [("sender", ELIGIBLE_PHONE), ("cnic", ELIGIBLE)]
        assert await limiter.read_then_hit_in_turn(["rabta:test:entry"], hits) is None
        assert limiter.degraded
        assert await limiter.read_then_hit_in_turn(["rabta:test:entry"], hits) is None
        decisions = await limiter.hit_in_turn(hits)
        assert [(d.allowed, d.degraded) for d in decisions] == [(True, True), (True, True)]
    finally:
        await limiter.close()


async def test_hits_in_turn_are_counted_in_metrics(limiter: RateLimiter):
    def count(scope: str, outcome: str) -> float:
        labels = {"scope": scope, "outcome": outcome}
        return REGISTRY.get_sample_value("rabta_ratelimit_hits_total", labels) or 0.0

    before = {(s, o): count(s, o) for s in ("sender", "cnic") for o in ("allowed", "limited")}
    for n in range(5):
        await limiter.hit_in_turn([("sender", f"+92345000010{n}"), ("cnic", ELIGIBLE)])
    assert count("sender", "allowed") == before["sender", "allowed"] + 5
    assert count("cnic", "allowed") == before["cnic", "allowed"] + 4
    assert count("cnic", "limited") == before["cnic", "limited"] + 1
    assert count("sender", "limited") == before["sender", "limited"]


async def test_a_hit_reads_its_window_in_the_same_round_trip(
    limiter: RateLimiter, monkeypatch: pytest.MonkeyPatch
):
    """`hit` with RateLimit headers to send counts and reads the window in one script: what it
    says is what `limits` reads from the same window, and limits' separate read is not made."""
    for n in range(3):
        with monkeypatch.context() as patched:
            patched.setattr(limiter._shared, "get_window_stats", _no_second_read)
            decision = await limiter.hit("ip", "198.51.100.9")
        peek = await limiter.test("ip", "198.51.100.9")
        assert decision.allowed and not decision.degraded
        assert decision.remaining == peek.remaining == 3 - n - 1
        assert decision.reset_at == pytest.approx(peek.reset_at, abs=0.01)
    with monkeypatch.context() as patched:
        patched.setattr(limiter._shared, "get_window_stats", _no_second_read)
        refused = await limiter.hit("ip", "198.51.100.9")
    assert not refused.allowed and refused.remaining == 0
    # The oldest of the three hits frees the next slot, a minute after it was counted.
    assert 50 <= refused.retry_after <= 60
    assert refused.reset_at == pytest.approx((await limiter.test("ip", "198.51.100.9")).reset_at)


async def _no_second_read(*args: object) -> None:
    raise AssertionError("the window was read in a second round trip")


async def test_hit_then_counts_a_caller_and_its_look_up_in_one_round_trip(
    limiter: RateLimiter, monkeypatch: pytest.MonkeyPatch
):
    """`hit_then`: the caller's hit as `hit` reports it (remaining, reset) and the CNIC's as
    `hit(remaining=False)` would, on the very windows they read, with no second read while both
    are allowed; a refused CNIC carries its own wait, read in the same script."""
    monkeypatch.setattr(limiter._shared, "get_window_stats", _no_second_read)
    for n in range(4):  # the CNIC allows 4, the IP 3: a partner's 5 a minute, then
        caller, (cnic,) = await limiter.hit_then("partner", "7", None, [("cnic", ELIGIBLE)])
        assert caller.allowed and cnic.allowed, n
        assert caller.remaining == 5 - n - 1 and not caller.degraded
    monkeypatch.undo()
    assert (await limiter.test("partner", "7")).remaining == 1
    assert (await limiter.test("cnic", ELIGIBLE)).remaining == 0
    assert caller.reset_at == pytest.approx((await limiter.test("partner", "7")).reset_at)

    caller, (cnic,) = await limiter.hit_then("partner", "7", None, [("cnic", ELIGIBLE)])
    assert caller.allowed and caller.remaining == 0
    assert not cnic.allowed and cnic.limit == 4
    # The oldest of the CNIC's four look-ups frees its next slot a minute after it was made.
    assert 50 <= cnic.retry_after <= 60
    assert cnic.reset_at == pytest.approx((await limiter.test("cnic", ELIGIBLE)).reset_at)


async def test_hit_then_spends_nothing_of_the_second_when_the_first_is_refused(
    limiter: RateLimiter,
):
    for _ in range(3):
        await limiter.hit("ip", "198.51.100.20")
    caller, cnic = await limiter.hit_then("ip", "198.51.100.20", None, [("cnic", ELIGIBLE)])
    assert not caller.allowed and caller.retry_after >= 1 and cnic is None
    assert (await limiter.test("cnic", ELIGIBLE)).remaining == 4


@pytest.mark.parametrize("shared", [True, False], ids=["redis", "in-process"])
async def test_hit_then_counts_the_look_ups_in_turn_up_to_the_refused_one(
    rl_settings: Settings, limiter: RateLimiter, shared: bool
):
    """An anonymous caller's look-up: its hourly look-ups as a sender, then the CNIC's; a sender
    over its limit spends nothing of the CNIC's, and its refusal carries its own wait."""
    if not shared:
        limiter = RateLimiter(rl_settings, "redis://127.0.0.1:1/0", retry_redis_after=60)
    try:
        then = [("sender", "ip:198.51.100.40"), ("cnic", ELIGIBLE)]
        for _ in range(3):  # the sender's 3 a minute
            caller, looked_up = await limiter.hit_then("ip", "198.51.100.40", "100/minute", then)
            assert caller.allowed and looked_up is not None
            assert [d.allowed for d in looked_up] == [True, True]
        caller, looked_up = await limiter.hit_then("ip", "198.51.100.40", "100/minute", then)
        assert caller.allowed and looked_up is not None
        assert [d.allowed for d in looked_up] == [False]
        assert looked_up[0].limit == 3 and 50 <= looked_up[0].retry_after <= 60
        assert (await limiter.test("cnic", ELIGIBLE)).remaining == 1
    finally:
        if not shared:
            await limiter.close()


async def test_hit_then_counts_in_this_process_without_redis(rl_settings: Settings):
    limiter = RateLimiter(rl_settings, "redis://127.0.0.1:1/0", retry_redis_after=60)
    try:
        for n in range(4):  # four callers, one look-up each: the CNIC's 4
            caller, (cnic,) = await limiter.hit_then(
                "ip", f"198.51.100.3{n}", None, [("cnic", ELIGIBLE)]
            )
            assert caller.degraded and cnic.allowed
        caller, (cnic,) = await limiter.hit_then("ip", "198.51.100.22", None, [("cnic", ELIGIBLE)])
        assert caller.allowed and not cnic.allowed and cnic.degraded
        assert cnic.retry_after >= 1
    finally:
        await limiter.close()
