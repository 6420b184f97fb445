"""Redis for shared state; without REDIS_URL an in-process substitute (one process only)."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from api.settings import Settings

Redis = aioredis.Redis

_fake_server: Any = None

#: Seconds a command (or a connection) may take before it fails: a wedged Redis costs a
#: request one second, not Twilio's fifteen.
COMMAND_TIMEOUT = 1.0


def _in_process_pool() -> aioredis.ConnectionPool:
    global _fake_server
    import fakeredis  # the substitute: a well-kept Redis implementation with Lua (lupa)

    if _fake_server is None:
        _fake_server = fakeredis.FakeServer()
    return aioredis.ConnectionPool(
        connection_class=fakeredis.FakeAsyncRedisConnection,
        server=_fake_server,
        decode_responses=True,
    )


def connect_redis(settings: Settings) -> aioredis.Redis:
    """A client for REDIS_URL, or for the process's in-process substitute.

    After Redis restarts, every connection left in the pool is dead, and redis-py notices only
    when a command fails on it (`from_url` pools retry nothing by default): a command that loses
    its connection is sent once more on a fresh one, so a restart costs no request an error. A
    timeout is not retried: a wedged Redis fails a command in one second, not two."""
    if settings.redis_url:
        return aioredis.Redis.from_url(
            settings.redis_url,
            decode_responses=True,
            socket_connect_timeout=COMMAND_TIMEOUT,
            socket_timeout=COMMAND_TIMEOUT,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            health_check_interval=30,
        )
    return aioredis.Redis(connection_pool=_in_process_pool())
