"""Small limits so tests can exhaust them, and a limiter on the test Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from api.ratelimit import RateLimiter
from api.settings import Settings, get_settings

SMALL_LIMITS = {
    "RABTA_LIMIT_SENDER": "3/minute",
    "RABTA_LIMIT_CNIC": "4/minute",
    "RABTA_LIMIT_OTP": "2/minute",
    "RABTA_LIMIT_IP": "3/minute",
    "RABTA_LIMIT_PARTNER": "5/minute",
}


@pytest.fixture
def rl_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The test settings with small limits (the `settings` fixture clears the cache after)."""
    for name, value in SMALL_LIMITS.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return get_settings()


@pytest.fixture
async def limiter(rl_settings: Settings, redis: object) -> AsyncIterator[RateLimiter]:
    """A limiter on the test Redis (flushed by the `redis` fixture) or the in-process one."""
    rate_limiter = RateLimiter(rl_settings, rl_settings.redis_url)
    try:
        yield rate_limiter
    finally:
        await rate_limiter.close()
