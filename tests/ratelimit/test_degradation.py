"""Redis stopped, hung and restarted under a RateLimiter: it keeps answering, then recovers."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import redis as sync_redis
from prometheus_client import REGISTRY

from api.ratelimit import RateLimiter
from api.ratelimit import service as ratelimit_service
from api.ratelimit.service import DEGRADED_MESSAGE, RECOVERED_MESSAGE
from api.settings import Settings
from tests.faults.conftest import private_redis  # noqa: F401 - a fixture
from tests.faults.services import PrivateRedis

BACKOFF = 1.0
#: Read at import, before the suite's fixture raises it for every test.
SHIPPED_CALL_TIMEOUT = ratelimit_service.CALL_TIMEOUT


def _our_keys(port: int) -> list[str]:
    client = sync_redis.Redis(port=port, decode_responses=True)
    try:
        return [str(key) for key in client.keys("rabta:rl:*")]
    finally:
        client.close()


@contextlib.contextmanager
def no_collections() -> Iterator[None]:
    """A timed block the suite's own full garbage collections stay out of: one takes up to
    0.8 s on a slow host (tests/conftest.py), longer than the bounds timed here."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _degraded_total() -> float:
    return REGISTRY.get_sample_value("rabta_ratelimit_degraded_total") or 0.0


async def test_redis_stopped_and_restarted(
    rl_settings: Settings,
    private_redis: PrivateRedis,  # noqa: F811 - the fixture
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.WARNING, logger="api.ratelimit.service")
    url = private_redis.url
    limiter = RateLimiter(rl_settings, url, retry_redis_after=BACKOFF)
    degraded_before = _degraded_total()
    try:
        first = await limiter.hit("sender", "+923001234567")
        assert first.allowed and not first.degraded
        assert _our_keys(private_redis.port)

        private_redis.kill()
        with no_collections():
            started = time.monotonic()
            decisions = [await limiter.hit("sender", "+923451112233") for _ in range(5)]
            assert time.monotonic() - started < 1.0, "a dead Redis must not slow every request"
        assert all(d.degraded for d in decisions)
        # Still limited, per process: 3/minute.
        assert [d.allowed for d in decisions] == [True, True, True, False, False]
        assert decisions[-1].retry_after >= 1
        assert await limiter.first_refusal("sender", "+923451112233", 60)
        # Several limits in turn keep to memory the same way, stopping at the first refusal.
        in_turn = [("sender", "+923451112244"), ("cnic", "3520212345671")]
        turns = [await limiter.hit_in_turn(in_turn) for _ in range(4)]
        assert [[d.allowed for d in t] for t in turns] == [[True, True]] * 3 + [[False]]
        assert all(d.degraded for t in turns for d in t)
        assert not await limiter.first_refusal("sender", "+923451112233", 60)
        assert limiter.degraded

        warnings = [r for r in caplog.records if DEGRADED_MESSAGE in r.getMessage()]
        assert len(warnings) == 1, "one warning per degradation episode"
        assert _degraded_total() == degraded_before + 1

        private_redis.start()
        # Within the back-off the limiter keeps to memory, then probes Redis and returns to it.
        assert (await limiter.hit("sender", "+923001234567")).degraded
        await asyncio.sleep(BACKOFF + 0.1)
        back = await limiter.hit("sender", "+923001234567")
        assert not back.degraded and not limiter.degraded
        assert _our_keys(private_redis.port)
        assert any(RECOVERED_MESSAGE in r.getMessage() for r in caplog.records)
        assert len([r for r in caplog.records if DEGRADED_MESSAGE in r.getMessage()]) == 1
    finally:
        await limiter.close()
    # No phone number reached the logs.
    assert "3001234567" not in caplog.text and "3451112233" not in caplog.text


@pytest.fixture
async def hung_redis() -> AsyncIterator[int]:
    """A TCP port that accepts connections and never answers (a wedged Redis or a bad proxy)."""
    stalled: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stalled.append(writer)

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        for writer in stalled:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_hung_redis_does_not_hang_requests(
    rl_settings: Settings, hung_redis: int, monkeypatch: pytest.MonkeyPatch
):
    # The bound as shipped, not the suite's (tests/conftest.py).
    monkeypatch.setattr(ratelimit_service, "CALL_TIMEOUT", SHIPPED_CALL_TIMEOUT)
    limiter = RateLimiter(rl_settings, f"redis://127.0.0.1:{hung_redis}/0", retry_redis_after=60)
    try:
        with no_collections():
            started = time.monotonic()
            first = await limiter.hit("ip", "198.51.100.1")
            assert time.monotonic() - started < 1.0
            assert first.allowed and first.degraded
            started = time.monotonic()
            for _ in range(20):
                await limiter.hit("ip", "198.51.100.1")
                await limiter.hit_in_turn([("sender", "+923001234567"), ("cnic", "3520212345671")])
            # After the first timeout, calls go straight to memory until the back-off ends.
            assert time.monotonic() - started < 0.2
    finally:
        await limiter.close()
