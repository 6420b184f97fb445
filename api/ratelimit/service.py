"""Rate limits shared by all workers through Redis (SPEC §4), built on the `limits` library.

Strategy: `limits`' moving window. It is exact: "5 OTPs per CNIC per hour" means at most five in
*any* hour, and the oldest entry of a full window tells exactly when the next check will pass,
which is what the "try again after …" SMS and `Retry-After` must say. The sliding-window counter
is an approximation (it weights the previous fixed window, assuming its hits were evenly spread)
that can let a burst through at a window boundary; its only advantage, O(1) memory per key
instead of one list entry per allowed hit, does not matter at our limits (10/hour, 20/day, 5/hour;
the largest, a partner's 1000/minute, is a thousand timestamps for a handful of partners).

Keys never hold a phone number or a CNIC in clear: the identity is an HMAC-SHA256 under the
service's secret key, truncated to 128 bits (a 13-digit CNIC could be brute-forced from a plain
hash; not from a keyed one).

When Redis does not answer, checks fall back to a per-process `MemoryStorage` limiter (SPEC §4:
"keeps answering … and logs the degradation"), one warning per episode; Redis is tried again
after a short back-off so the shared limits come back by themselves.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

import redis.asyncio as aioredis
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.util import WindowStats, get_package_data
from prometheus_client import Counter
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from api.identity import keyed_digest
from api.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Prefix of every Redis key this module writes.
KEY_PREFIX = "rabta:rl"
#: Look-ups an agent may make in the console (SPEC §4 "per agent"); not configurable yet.
AGENT_LIMIT = "300/hour"
SCOPES: tuple[str, ...] = ("sender", "telegram", "ip", "cnic", "otp", "partner", "agent")

# A healthy local Redis answers in well under a millisecond; these only bound the bad case so a
# dead or hung Redis costs a request at most CALL_TIMEOUT, once per back-off. Every command this
# module sends runs inside `_call`'s `asyncio.timeout(CALL_TIMEOUT)`, so the client sets no
# socket timeout of its own: with one, redis-py sends each command through `asyncio.wait_for`,
# a new task per command on Python 3.11 (about 20 µs of CPU each).
CONNECT_TIMEOUT = 0.25
CALL_TIMEOUT = 0.5
#: Seconds between attempts to go back to Redis while degraded.
RETRY_REDIS_AFTER = 5.0

DEGRADED_MESSAGE = "rate limiting degraded to in-process: Redis unreachable"
RECOVERED_MESSAGE = "rate limiting back on Redis: limits are shared by all workers again"

HITS = Counter(
    "rabta_ratelimit_hits_total", "Rate limit checks, by scope and outcome.", ["scope", "outcome"]
)
DEGRADED = Counter(
    "rabta_ratelimit_degraded_total",
    "Times rate limiting fell back to the per-process limiter because Redis was unreachable.",
)

# What the limits library lets through from redis-py, verified by experiment: with
# wrap_exceptions=True a refused or reset connection arrives as limits' StorageError; RedisError
# covers anything raised outside its wrapper (e.g. SET NX for first_refusal), and OSError covers
# TimeoutError from our own asyncio.timeout and socket errors.
_UNREACHABLE = (StorageError, RedisError, OSError)


def _limits_script(name: str) -> str:
    """One of `limits`' own Redis scripts, as installed, to call as a Lua function: inside it,
    KEYS and ARGV are the function's parameters, so the script reads its usual arguments."""
    source = get_package_data(f"resources/redis/lua_scripts/{name}.lua").decode()
    return f"local function {name}(KEYS, ARGV)\n{source}\nend\n"


#: Several moving-window hits in one round trip, counted in turn until one is refused, after
#: reading some keys of the caller's and only if none of them exists, or if the first alone
#: exists and ARGV[3] says how many of the first hits to count then: `limits`' acquire script,
#: unchanged, called once per hit. Before anything, it sets the caller's keys to write, if any
#: (`SET key value EX seconds NX` each), so that a read of one of them finds it. KEYS: the keys
#: to write (ARGV[4] of them, maybe none), the keys to read (ARGV[1] of them, maybe none), then
#: one per hit; ARGV[2] the timestamp, then each written key's value and seconds, then each
#: hit's limit and expiry. Returns {the values read, -1} when nothing was counted, else {the
#: values, 0} when every hit it counted was allowed, or {the values, the 1-based index of the
#: refused hit} (the hits after it are not counted); with no keys to read, the index alone (a
#: bare integer parses faster than a list).
READ_THEN_ACQUIRE_IN_TURN = (
    _limits_script("acquire_moving_window")
    + """
local writes = tonumber(ARGV[4])
for i = 1, writes do
    redis.call('SET', KEYS[i], ARGV[3 + 2 * i], 'EX', ARGV[4 + 2 * i], 'NX')
end
local reads = tonumber(ARGV[1])
local first_hit = writes + reads + 1
local last = #KEYS
local values = {}
if reads > 0 then
    values = redis.call('MGET', unpack(KEYS, writes + 1, writes + reads))
    local found = 0
    for i = 1, reads do
        if values[i] then
            found = found + 1
        end
    end
    if found > 0 then
        if found > 1 or not values[1] or tonumber(ARGV[3]) == 0 then
            return {values, -1}
        end
        last = math.min(#KEYS, first_hit - 1 + tonumber(ARGV[3]))
    end
end
local refused = 0
for i = first_hit, last do
    local j = 2 * writes + 2 * (i - first_hit)
    if not acquire_moving_window({KEYS[i]}, {ARGV[2], ARGV[j + 5], ARGV[j + 6], 1}) then
        refused = i - first_hit + 1
        break
    end
end
if reads == 0 then
    return refused
end
return {values, refused}
"""
)

#: One hit and the window it leaves, in one round trip: `limits`' acquire script, then its
#: window script (KEYS[1]; ARGV the timestamp, the limit and the expiry). Returns {1 or 0 for
#: counted or refused, the oldest entry's timestamp, the entries in the window}, or {1 or 0}
#: alone for an empty window: what `hit` then `get_window_stats` read in two.
ACQUIRE_AND_READ = (
    _limits_script("acquire_moving_window")
    + _limits_script("moving_window")
    + """
local acquired = acquire_moving_window(KEYS, {ARGV[1], ARGV[2], ARGV[3], 1}) and 1 or 0
local found = moving_window(KEYS, {ARGV[1] - ARGV[3], ARGV[2]})
if found then
    return {acquired, found[1], found[2]}
end
return {acquired}
"""
)


#: `ACQUIRE_AND_READ` for KEYS[1], then, only if that hit was counted, a hit of each of the
#: other keys in turn until one is refused (ARGV each one's limit and expiry after the first's
#: three) and that one's window: a caller's quota with the headers it reports, then the look-up
#: it makes (an anonymous caller's hourly look-ups, the CNIC's), in one round trip. Returns
#: {1 or 0, the first's window ({} when empty), -1 when the others were not counted, 0 when all
#: were allowed, else the 1-based index among them of the refused one, its window ({} when not
#: refused)}.
ACQUIRE_READ_THEN_ACQUIRE = (
    _limits_script("acquire_moving_window")
    + _limits_script("moving_window")
    + """
local acquired = acquire_moving_window({KEYS[1]}, {ARGV[1], ARGV[2], ARGV[3], 1}) and 1 or 0
local found = moving_window({KEYS[1]}, {ARGV[1] - ARGV[3], ARGV[2]}) or {}
if acquired == 0 then
    return {0, found, -1, {}}
end
for i = 2, #KEYS do
    local limit, expiry = ARGV[2 * i], ARGV[2 * i + 1]
    if not acquire_moving_window({KEYS[i]}, {ARGV[1], limit, expiry, 1}) then
        return {1, found, i - 1, moving_window({KEYS[i]}, {ARGV[1] - expiry, limit}) or {}}
    end
end
return {1, found, 0, {}}
"""
)


@dataclass(frozen=True)
class Decision:
    """The outcome of one rate-limit check."""

    allowed: bool
    limit: int
    remaining: int
    #: Epoch seconds when the window next frees a slot.
    reset_at: float
    #: Whole seconds to wait before trying again; 0 when allowed.
    retry_after: int
    #: The per-process fallback answered (Redis unreachable): limits are per worker.
    degraded: bool


@lru_cache(maxsize=512)
def parse_limit(text: str) -> RateLimitItem:
    """A `limits` item for a limit string like `10/hour`; ValueError if it is not one."""
    return parse(text)


def default_limits(settings: Settings) -> dict[str, str]:
    """The configured limit string of each scope."""
    return {
        "sender": settings.limit_sender,
        "telegram": settings.limit_sender,
        "ip": settings.limit_ip,
        "cnic": settings.limit_cnic,
        "otp": settings.limit_otp,
        "partner": settings.limit_partner,
        "agent": AGENT_LIMIT,
    }


def _client(redis_url: str | None) -> aioredis.Redis:
    """Our own client: a short connect timeout and one immediate retry (a pooled connection may
    be stale after a Redis restart), instead of redis-py's default three retries with back-off;
    commands are bounded by `_call`'s timeout."""
    if redis_url:
        return aioredis.Redis.from_url(
            redis_url,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=None,
            retry=Retry(NoBackoff(), 1),
            health_check_interval=30,
        )
    # The in-process substitute (no REDIS_URL): the same FakeServer as api.redis, so the app's
    # Redis client, the tests' flushes and every RateLimiter in this process see one keyspace.
    from api.redis import _in_process_pool

    return aioredis.Redis(connection_pool=_in_process_pool())


class RateLimiter:
    """Per-scope limits in Redis, shared by all workers; per-process while Redis is down."""

    def __init__(
        self,
        settings: Settings,
        redis_url: str | None,
        *,
        retry_redis_after: float = RETRY_REDIS_AFTER,
    ) -> None:
        self._secret = settings.secret_key.encode()
        # Parsing every default now makes a bad RABTA_LIMIT_* stop the start, not a request.
        self._defaults = {
            scope: parse_limit(text) for scope, text in default_limits(settings).items()
        }
        self._retry_redis_after = retry_redis_after
        self.redis_url = redis_url
        self._redis = _client(redis_url)
        pool_option: dict[str, Any] = {"connection_pool": self._redis.connection_pool}
        self._storage = RedisStorage(
            "async+redis://",  # only parsed; the pool decides where to connect
            implementation="redispy",  # limits' default is coredis (PROTOCOLS §7)
            key_prefix=KEY_PREFIX,
            wrap_exceptions=True,
            **pool_option,
        )
        self._shared = MovingWindowRateLimiter(self._storage)
        self._read_then_acquire = self._redis.register_script(READ_THEN_ACQUIRE_IN_TURN)
        self._acquire_and_read = self._redis.register_script(ACQUIRE_AND_READ)
        self._acquire_read_then_acquire = self._redis.register_script(ACQUIRE_READ_THEN_ACQUIRE)
        self._memory = MemoryStorage()
        self._local = MovingWindowRateLimiter(self._memory)
        self._local_refusals: dict[str, float] = {}
        self._degraded = False
        self._next_attempt = 0.0

    @property
    def degraded(self) -> bool:
        """True while Redis is unreachable and each worker limits on its own."""
        return self._degraded

    def identity_key(self, scope: str, identity: str) -> str:
        """The keyed hash that stands for an identity in Redis keys (never the number itself)."""
        return keyed_digest(self._secret, scope, identity.strip())

    def _item(self, scope: str, limit: str | None) -> RateLimitItem:
        if scope not in self._defaults:
            raise ValueError(f"unknown rate-limit scope {scope!r}; one of {', '.join(SCOPES)}")
        return parse_limit(limit) if limit else self._defaults[scope]

    async def hit(
        self, scope: str, identity: str, limit: str | None = None, *, remaining: bool = True
    ) -> Decision:
        """Count one request of `identity` in `scope` and say whether it is allowed.

        Pass identities normalised (CNIC as 13 digits, phones in E.164) so one person is one key.
        With `remaining=False` (callers that send no RateLimit headers: the bot) an allowed hit
        costs one round trip instead of two, and its `remaining` is only a lower bound (0); a
        refusal always reads the window, for its exact `retry_after`.
        """
        item = self._item(scope, limit)
        key = self.identity_key(scope, identity)

        async def check(limiter: MovingWindowRateLimiter) -> tuple[bool, WindowStats]:
            allowed = await limiter.hit(item, scope, key)
            if allowed and not remaining:
                return allowed, WindowStats(reset_time=0.0, remaining=0)
            return allowed, await limiter.get_window_stats(item, scope, key)

        async def shared() -> tuple[bool, WindowStats]:
            if not remaining:
                return await check(self._shared)
            # The hit and its window in one round trip instead of two.
            now, expiry = time.time(), item.get_expiry()
            reply = await self._acquire_and_read(
                keys=[_redis_key(item, scope, key)], args=[now, item.amount, expiry]
            )
            return bool(int(reply[0])), _window(reply[1:], now, expiry, item.amount)

        (allowed, stats), degraded = await self._call(shared, lambda: check(self._local))
        HITS.labels(scope, "allowed" if allowed else "limited").inc()
        return _decision(item, allowed, stats, degraded)

    async def hit_then(
        self, scope: str, identity: str, limit: str | None, then: Sequence[tuple[str, str]]
    ) -> tuple[Decision, list[Decision] | None]:
        """`hit(scope, identity, limit)`, then, only if it was allowed, the `then` hits at their
        default limits in turn until one is refused, in one Redis round trip: a REST caller's
        quota, whose headers it reports, and the look-up it makes. The `then` decisions are
        `hit_in_turn`'s (up to the refused one; an allowed one's `remaining` only a lower
        bound); None when the first was refused (a refused caller spends nothing of a CNIC's)."""
        item = self._item(scope, limit)
        key = self.identity_key(scope, identity)
        counted = self._counted(then)

        async def shared() -> tuple[bool, WindowStats, int | None, WindowStats | None]:
            now = time.time()
            expiry = item.get_expiry()
            keys, args = [_redis_key(item, scope, key)], [now, item.amount, expiry]
            for then_scope, then_item, then_key in counted:
                keys.append(_redis_key(then_item, then_scope, then_key))
                args += [then_item.amount, then_item.get_expiry()]
            reply = await self._acquire_read_then_acquire(keys=keys, args=args)
            allowed, found, refused, refused_found = reply
            stats = _window(found, now, expiry, item.amount)
            if int(refused) < 0:
                return bool(int(allowed)), stats, None, None
            if int(refused) == 0:
                return bool(int(allowed)), stats, 0, None
            _, then_item, _ = counted[int(refused) - 1]
            then_stats = _window(refused_found, now, then_item.get_expiry(), then_item.amount)
            return bool(int(allowed)), stats, int(refused), then_stats

        async def local() -> tuple[bool, WindowStats, int | None, WindowStats | None]:
            allowed = await self._local.hit(item, scope, key)
            stats = await self._local.get_window_stats(item, scope, key)
            if not allowed:
                return allowed, stats, None, None
            for index, (then_scope, then_item, then_key) in enumerate(counted, 1):
                if not await self._local.hit(then_item, then_scope, then_key):
                    then_stats = await self._local.get_window_stats(then_item, then_scope, then_key)
                    return allowed, stats, index, then_stats
            return allowed, stats, 0, None

        (allowed, stats, refused, then_stats), degraded = await self._call(shared, local)
        HITS.labels(scope, "allowed" if allowed else "limited").inc()
        decision = _decision(item, allowed, stats, degraded)
        if refused is None:
            return decision, None
        return decision, _decisions(counted, refused, then_stats, degraded)

    async def hit_in_turn(self, hits: Sequence[tuple[str, str]]) -> list[Decision]:
        """Count `(scope, identity)` hits at their default limits, in order, stopping at the first
        refusal: what calling `hit(..., remaining=False)` for each until one is refused does, in
        one Redis round trip instead of one per hit (a refusal reads its window in a second).

        Returns a decision for each hit that was counted or refused; the hits after a refusal are
        not counted (a sender over their limit spends nothing of a CNIC's)."""
        counted = self._counted(hits)

        async def shared() -> tuple[int, WindowStats | None]:
            _, refused, stats = await self._read_then_acquire_shared((), counted)
            return refused, stats

        async def local() -> tuple[int, WindowStats | None]:
            for index, (scope, item, key) in enumerate(counted, 1):
                if not await self._local.hit(item, scope, key):
                    return index, await self._local.get_window_stats(item, scope, key)
            return 0, None

        (refused, stats), degraded = await self._call(shared, local)
        return _decisions(counted, refused, stats, degraded)

    async def read_then_hit_in_turn(
        self,
        reads: Sequence[str],
        hits: Sequence[tuple[str, str]],
        *,
        when_first_found: int = 0,
        writes: Sequence[tuple[str, str, int]] = (),
    ) -> tuple[list[Any], list[Decision] | None] | None:
        """Read the Redis keys `reads` and, only when none of them exists, count `hits` as
        `hit_in_turn` does, in one round trip: (the values read, the decisions or None when
        something was read and nothing counted). When the first key alone exists, the first
        `when_first_found` hits are counted instead (their decisions alone). None when Redis
        could not be asked (it is unreachable, or degraded and not due for a retry): nothing was
        read or counted, and the caller reads and counts the usual way (`hit_in_turn` then falls
        back to this process). `writes`, (key, value, seconds) each, are set first in the same
        round trip (`SET … EX seconds NX`), unless the result is None.

        For a caller whose next step would count the hits unless it finds state of its own: the
        reply cache, whose first read of a message also counts the look-up it leads to, or the
        sender's limit alone when it finds the answer to a resend, and which writes the entries
        of the answers given before it."""
        counted = self._counted(hits)

        async def shared() -> tuple[list[Any], int, WindowStats | None]:
            return await self._read_then_acquire_shared(reads, counted, when_first_found, writes)

        async def unavailable() -> None:
            return None

        found, degraded = await self._call(shared, unavailable)
        if found is None:
            return None
        values, refused, stats = found
        if refused < 0:
            return values, None
        if reads and values[0] is not None:  # the first alone was found
            counted = counted[:when_first_found]
        return values, _decisions(counted, refused, stats, degraded)

    def _counted(self, hits: Sequence[tuple[str, str]]) -> list[tuple[str, RateLimitItem, str]]:
        """Each hit's scope, default limit and keyed identity."""
        return [
            (scope, self._defaults[scope], self.identity_key(scope, identity))
            for scope, identity in hits
        ]

    async def _read_then_acquire_shared(
        self,
        reads: Sequence[str],
        counted: Sequence[tuple[str, RateLimitItem, str]],
        when_first_found: int = 0,
        writes: Sequence[tuple[str, str, int]] = (),
    ) -> tuple[list[Any], int, WindowStats | None]:
        """`READ_THEN_ACQUIRE_IN_TURN` on Redis: the values read, the refused hit's index (0:
        none, -1: nothing counted) and, for a refusal, its window (a second round trip)."""
        keys = [key for key, _, _ in writes]
        keys += reads
        args: list[str | float | int] = [len(reads), time.time(), when_first_found, len(writes)]
        for _, value, seconds in writes:
            args += [value, seconds]
        for scope, item, key in counted:
            keys.append(_redis_key(item, scope, key))
            args += [item.amount, item.get_expiry()]
        reply = await self._read_then_acquire(keys=keys, args=args)
        values, refused = (list(reply[0]), int(reply[1])) if reads else ([], int(reply))
        if refused <= 0:
            return values, refused, None
        scope, item, key = counted[refused - 1]
        return values, refused, await self._shared.get_window_stats(item, scope, key)

    async def test(self, scope: str, identity: str, limit: str | None = None) -> Decision:
        """Whether a hit would be allowed now, without consuming one."""
        item = self._item(scope, limit)
        key = self.identity_key(scope, identity)
        stats, degraded = await self._call(
            lambda: self._shared.get_window_stats(item, scope, key),
            lambda: self._local.get_window_stats(item, scope, key),
        )
        return _decision(item, stats.remaining >= 1, stats, degraded)

    async def first_refusal(self, scope: str, identity: str, window_seconds: int) -> bool:
        """True only the first time in `window_seconds` that this limited identity is refused.

        The SMS bot sends one "try again after …" reply when this is True and stays silent
        otherwise (replies cost money); pass the refusal's `retry_after` as the window.
        """
        self._item(scope, None)
        key = f"{KEY_PREFIX}:refused:{scope}:{self.identity_key(scope, identity)}"
        window = max(1, int(window_seconds))

        async def shared() -> bool:
            return bool(await self._redis.set(key, "1", nx=True, ex=window))

        async def local() -> bool:
            now = time.monotonic()
            if self._local_refusals.get(key, 0.0) > now:
                return False
            if len(self._local_refusals) > 10_000:  # bound memory under a flood of senders
                self._local_refusals = {k: t for k, t in self._local_refusals.items() if t > now}
            self._local_refusals[key] = now + window
            return True

        first, _ = await self._call(shared, local)
        return first

    async def close(self) -> None:
        """Release the Redis connections and the in-process limiter's timer."""
        await self._redis.aclose(close_connection_pool=True)
        timer = self._memory.timer
        if timer is not None and not timer.done():
            timer.cancel()

    # -- Redis or the in-process fallback ------------------------------------------------------

    async def _call(
        self, shared: Callable[[], Awaitable[T]], local: Callable[[], Awaitable[T]]
    ) -> tuple[T, bool]:
        """Run `shared` on Redis, or `local` when Redis is unreachable; True when degraded."""
        if self._redis_turn():
            try:
                async with asyncio.timeout(CALL_TIMEOUT):
                    result = await shared()
            except _UNREACHABLE as exc:
                self._redis_failed(exc)
            else:
                self._redis_answered()
                return result, False
        return await local(), True

    def _redis_turn(self) -> bool:
        if not self._degraded:
            return True
        now = time.monotonic()
        if now < self._next_attempt:
            return False
        # This call probes Redis; concurrent ones keep to memory until it has answered.
        self._next_attempt = now + self._retry_redis_after
        return True

    def _redis_failed(self, exc: BaseException) -> None:
        self._next_attempt = time.monotonic() + self._retry_redis_after
        if not self._degraded:
            self._degraded = True
            DEGRADED.inc()
            log.warning("%s (%s)", DEGRADED_MESSAGE, type(exc).__name__)

    def _redis_answered(self) -> None:
        if self._degraded:
            self._degraded = False
            log.warning(RECOVERED_MESSAGE)


def _window(found: Sequence[Any], now: float, expiry: int, amount: int) -> WindowStats:
    """The stats of a window `moving_window.lua` read: {the oldest entry, the entries}, or
    empty for an empty window."""
    if not found:
        return WindowStats(now + expiry, amount)
    return WindowStats(float(found[0]) + expiry, amount - int(found[1]))


def _redis_key(item: RateLimitItem, scope: str, key: str) -> str:
    """The key `limits` itself keeps this window under (RedisStorage prefixes with ours)."""
    return f"{KEY_PREFIX}:{item.key_for(scope, key)}"


def _decisions(
    counted: Sequence[tuple[str, RateLimitItem, str]],
    refused: int,
    stats: WindowStats | None,
    degraded: bool,
) -> list[Decision]:
    """The decisions of hits counted in turn: allowed up to the refused one (1-based; 0 for
    none), which carries its window; none for the hits after it, which were not counted."""
    decisions = []
    for index, (scope, item, _) in enumerate(counted, 1):
        allowed = index != refused
        HITS.labels(scope, "allowed" if allowed else "limited").inc()
        window = WindowStats(reset_time=0.0, remaining=0) if allowed or stats is None else stats
        decisions.append(_decision(item, allowed, window, degraded))
        if not allowed:
            break
    return decisions


def _decision(item: RateLimitItem, allowed: bool, stats: WindowStats, degraded: bool) -> Decision:
    now = time.time()
    # An empty window has nothing to reset; never report a reset in the past.
    reset_at = max(float(stats.reset_time), now)
    retry_after = 0 if allowed else max(1, math.ceil(reset_at - now))
    return Decision(
        allowed=allowed,
        limit=item.amount,
        remaining=max(0, int(stats.remaining)),
        reset_at=reset_at,
        retry_after=retry_after,
        degraded=degraded,
    )
