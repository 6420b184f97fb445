"""Cost of one `RateLimiter.hit()`: real Redis, the in-process substitute, the degraded fallback.

Run: `.venv/bin/python bench/ratelimit_bench.py [--hits 5000] [--redis-url redis://127.0.0.1:6379/15]`
The Redis database given is FLUSHED first (default db 15, which nothing else uses).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import time

import redis.asyncio as aioredis

from api.ratelimit import RateLimiter  # the project is installed in .venv (editable)
from api.settings import Settings

SENDERS = 500  # spread the hits like real traffic: many senders, a few hits each


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _measure(limiter: RateLimiter, hits: int, limit: str, senders: int) -> list[float]:
    for n in range(50):  # warm up: connections, script loading
        await limiter.hit("sender", f"+92300{n:07d}", limit)
    timings: list[float] = []
    for n in range(hits):
        identity = f"+92301{n % senders:07d}"
        started = time.perf_counter_ns()
        await limiter.hit("sender", identity, limit)
        timings.append((time.perf_counter_ns() - started) / 1000)
    return timings


async def _ping(redis_url: str, hits: int) -> list[float]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        for _ in range(50):
            await client.ping()
        timings: list[float] = []
        for _ in range(hits):
            started = time.perf_counter_ns()
            await client.ping()
            timings.append((time.perf_counter_ns() - started) / 1000)
        return timings
    finally:
        await client.aclose()


def _report(name: str, timings: list[float]) -> None:
    ordered = sorted(timings)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(
        f"{name:<58} mean {statistics.fmean(timings):8.1f} µs   "
        f"p50 {p50:8.1f} µs   p99 {p99:8.1f} µs   (n={len(timings)})"
    )


async def main(hits: int, redis_url: str) -> None:
    settings = Settings()
    flush = aioredis.Redis.from_url(redis_url, socket_connect_timeout=1)
    try:
        await flush.flushdb()
        have_redis = True
    except (OSError, aioredis.RedisError) as exc:
        print(f"real Redis at {redis_url} unreachable ({exc}); skipping it")
        have_redis = False
    finally:
        await flush.aclose()

    backends: list[tuple[str, str | None]] = []
    if have_redis:
        backends.append((f"Redis {redis_url}", redis_url))
    backends.append(("in-process substitute (fakeredis)", None))
    backends.append(("degraded fallback (MemoryStorage)", f"redis://127.0.0.1:{_closed_port()}/0"))

    print(f"RateLimiter.hit(), {hits:,} hits per case, moving window\n")
    if have_redis:
        _report("baseline: one Redis PING round trip", await _ping(redis_url, hits))
    for name, url in backends:
        limiter = RateLimiter(settings, url, retry_redis_after=3600)
        try:
            allowed = await _measure(limiter, hits, "1000000/hour", SENDERS)
            _report(f"{name}, allowed", allowed)
            limited = await _measure(limiter, hits, "10/hour", 1)
            _report(f"{name}, one sender over 10/hour", limited)
            assert limiter.degraded == name.startswith("degraded")
        finally:
            await limiter.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hits", type=int, default=5000)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    args = parser.parse_args()
    asyncio.run(main(args.hits, args.redis_url))
