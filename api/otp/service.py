"""One-time codes (SPEC §3): 6 digits from `secrets`, only a keyed hash kept in Redis, valid 5
minutes, 5 wrong tries per code, a 60 s resend cooldown, 5 codes per CNIC per hour, compared in
constant time, used once, never logged. Every failure of Redis fails closed.

Requests are addressed by a random `request_id`; an unknown CNIC gets one too (a decoy that no
code can open), so the answer never tells whether a CNIC exists.

A request keeps the CNIC it opens sealed (api/sealed.py), beside a keyed hash of it (`who`) for
what only asks "the same CNIC?" (resuming, the cooldown of a burnt code): Redis holds no CNIC in
clear. A request whose CNIC does not open (the secret key changed, the value was altered, or a
release before sealing wrote it) is taken as expired.

A code issued for a `requester` (a conversation's channel and sender) is bound to that requester
and CNIC for the code's lifetime: the same requester asking again while the code is live, unused
and not exhausted gets the same request back (RESUMED) instead of the resend cooldown, so a
helper whose USSD session timed out can still type the code that went out. Anyone else asking
meets the cooldown as before.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from api.identity import normalise_text
from api.sealed import sealer_for
from api.settings import Settings

CODE_DIGITS = 6


log = logging.getLogger(__name__)


def new_code() -> str:
    """Six random digits."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


class OtpUnavailable(Exception):
    """Redis cannot be reached: no code is issued or checked (fail closed)."""


def unavailable(exc: RedisError) -> OtpUnavailable:
    """What to raise for `exc`, logged, so that whoever sees the 503s sees why in the log: the
    error's class and message (an address, never a key or a value)."""
    log.warning("verification unavailable: Redis %s: %s", type(exc).__name__, exc)
    return OtpUnavailable()


class IssueOutcome(enum.StrEnum):
    ISSUED = "issued"
    COOLDOWN = "cooldown"  # a code went out less than a minute ago
    TOO_MANY = "too_many"  # five codes this hour
    RESUMED = "resumed"  # this requester's code for this CNIC is still live: no new code


@dataclass(frozen=True, slots=True)
class Issued:
    outcome: IssueOutcome
    request_id: str | None = None
    #: The code to deliver to the registered mobile; None for a decoy or a refusal.
    code: str | None = None
    retry_after: int = 0
    #: Seconds the code stays valid (set for ISSUED and RESUMED).
    expires_in: int = 0


class CheckOutcome(enum.StrEnum):
    VERIFIED = "verified"
    WRONG = "wrong"
    EXHAUSTED = "exhausted"  # the fifth wrong try, or any try after it while the code lives
    EXPIRED = "expired"  # unknown, expired or already used


@dataclass(frozen=True, slots=True)
class Checked:
    outcome: CheckOutcome
    cnic: str | None = None
    tries_left: int = 0
    #: EXHAUSTED: seconds until a new code can be issued for the request's CNIC.
    retry_after: int = 0
    #: EXHAUSTED by this very try, a wrong code (the fifth): still one of the wrong tries the
    #: contract allows (REST answers it 401, the next 429), though the code is now burnt.
    last_try: bool = False


#: One try at a request, atomically: nothing for a request that is gone, else the new try count
#: with the stored hash, the sealed CNIC and its keyed hash.
_COUNT_TRY = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local tries = redis.call('HINCRBY', KEYS[1], 'tries', 1)
local fields = redis.call('HMGET', KEYS[1], 'hash', 'cnic', 'who')
return {tries, fields[1] or '', fields[2] or '', fields[3] or ''}
"""


#: A new code's hash for a live request (its tries and lifetime kept); 0 when it has ended.
_RENEW = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'hash', ARGV[1])
return 1
"""


class OtpService:
    """Issues and checks codes; the caller delivers the code through the outbox."""

    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self._redis = redis
        self._settings = settings
        self._key = hashlib.sha256(b"rabta-otp:" + settings.secret_key.encode()).digest()
        self._sealer = sealer_for(settings.secret_key)

    def _digest(self, value: str) -> str:
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()

    def _request_key(self, request_id: str) -> str:
        # Not the key the release before sealing gave the same id (the digest of the id alone):
        # while both run (a rolling upgrade), neither finds the other's requests, so a code
        # typed to the other release is "expired", never a sealed value read as a CNIC.
        return f"rabta:otp:req:{self._digest('sealed:' + request_id)[:40]}"

    def _resume_key(self, requester: str, cnic: str) -> str:
        """Where a requester's live request for `cnic` is kept: a keyed hash of both, so neither
        the CNIC nor the sender's number appears in Redis keys."""
        digest = self._digest("\x00".join(("resume", requester, cnic)))
        return f"rabta:otp:resume:{digest[:40]}"

    async def _resumable(self, requester: str, cnic: str) -> Issued | None:
        """The live request `requester` was given for `cnic`, if it is still unused, not
        exhausted and not expired."""
        request_id = await self._redis.get(self._resume_key(requester, cnic))
        if not request_id:
            return None
        key = self._request_key(str(request_id))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hmget(key, "who", "tries")
            pipe.pttl(key)
            (stored_who, tries), pttl = await pipe.execute()
        # A used or exhausted code is deleted; a stale binding simply expires with it (it is
        # not deleted here, so it can never remove a newer binding written meanwhile). The
        # request is for the same CNIC when its keyed hash is (a request without one is from
        # a release before sealing: not resumed).
        if (
            not stored_who
            or not hmac.compare_digest(str(stored_who), self._who(cnic))
            or tries is None
            or int(tries) >= self._settings.otp_max_attempts
        ):
            return None
        if pttl is None or int(pttl) <= 0:
            return None
        return Issued(
            IssueOutcome.RESUMED,
            request_id=str(request_id),
            expires_in=max(1, -(-int(pttl) // 1000)),
        )

    async def issue(self, *, cnic: str, deliverable: bool, requester: str | None = None) -> Issued:
        """Start a verification for `cnic`; `deliverable` is False when no code can reach anyone
        (unknown CNIC, no registered mobile): the answer looks the same, the code opens nothing.

        With a `requester` (a conversation's channel and sender), a deliverable code is bound to
        it: while that code is live, unused and not exhausted, the same requester asking again
        for the same CNIC gets it back (RESUMED, no new code, no cooldown)."""
        cooldown_key, hour_key = self._issue_keys(cnic)
        try:
            if requester is not None:
                resumed = await self._resumable(requester, cnic)
                if resumed is not None:
                    return resumed
            if not await self._redis.set(
                cooldown_key, "1", nx=True, ex=self._settings.otp_resend_seconds
            ):
                ttl = await self._redis.ttl(cooldown_key)
                return Issued(IssueOutcome.COOLDOWN, retry_after=max(int(ttl), 1))
            # A moving hour (a sorted set of send times), so no burst fits across an hour mark.
            now = time.time()
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zremrangebyscore(hour_key, 0, now - 3600)
                pipe.zrange(hour_key, 0, -1, withscores=True)
                _, sent = await pipe.execute()
            if (wait := self._hour_wait(sent, now)) > 0:
                return Issued(IssueOutcome.TOO_MANY, retry_after=wait)
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zadd(hour_key, {secrets.token_hex(8): now})
                pipe.expire(hour_key, 3600)
                await pipe.execute()
            request_id = secrets.token_urlsafe(18)
            code = new_code()
            # A decoy stores a hash no code can match, so checking it costs the same.
            secret = code if deliverable else secrets.token_hex(16)
            key = self._request_key(request_id)
            lifetime = self._settings.otp_ttl_seconds
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(
                    key,
                    mapping={
                        "cnic": self._sealer.seal(cnic, where=key),
                        "who": self._who(cnic),
                        "hash": self._digest(secret),
                        "tries": 0,
                    },
                )
                pipe.expire(key, lifetime)
                if requester is not None and deliverable:
                    # Bound to this requester for exactly as long as the code lives.
                    pipe.set(self._resume_key(requester, cnic), request_id, ex=lifetime)
                await pipe.execute()
        except RedisError as exc:
            raise unavailable(exc) from exc
        return Issued(
            IssueOutcome.ISSUED,
            request_id=request_id,
            code=code if deliverable else None,
            expires_in=lifetime,
        )

    async def renew(self, request_id: str, code: str) -> bool:
        """Give a live request a new code (its tries and lifetime as they were): for a resumed
        request whose code never reached the outbox (`api.verification.resend_if_lost`). False
        when the request has ended; raises OtpUnavailable."""
        try:
            return bool(
                await self._redis.eval(_RENEW, 1, self._request_key(request_id), self._digest(code))
            )
        except RedisError as exc:
            raise unavailable(exc) from exc

    def _who(self, cnic: str) -> str:
        """The keyed hash that stands for `cnic` in keys and in a request's `who`."""
        return self._digest("cnic:" + cnic)[:40]

    def _issue_keys(self, cnic: str) -> tuple[str, str]:
        """The resend cooldown's key and the hour of codes' key for `cnic` (keyed, no CNIC)."""
        return self._keys_of(self._who(cnic))

    @staticmethod
    def _keys_of(who: str) -> tuple[str, str]:
        """The resend cooldown's key and the hour of codes' key for a CNIC's keyed hash."""
        return f"rabta:otp:cooldown:{who}", f"rabta:otp:hour:{who}"

    def _hour_wait(self, sent: list[tuple[str, float]], now: float) -> int:
        """Seconds until the hourly cap lets one more code go, given this hour's send times;
        0 when under the cap."""
        if len(sent) < self._hourly_cap():
            return 0
        oldest = min(score for _, score in sent)
        return max(int(oldest + 3600 - now), 1)

    async def _new_code_after(self, who: str) -> int:
        """Seconds until `issue` would send the CNIC whose keyed hash is `who` a new code (the
        resend cooldown's or the hourly cap's wait, at least 1): what the 429 for a burnt code
        tells in `Retry-After`."""
        cooldown_key, hour_key = self._keys_of(who)
        now = time.time()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.ttl(cooldown_key)
            pipe.zrangebyscore(hour_key, now - 3600, "+inf", withscores=True)
            cooldown, sent = await pipe.execute()
        return max(1, int(cooldown), self._hour_wait(sent, now))

    def _hourly_cap(self) -> int:
        from limits import parse

        item = parse(self._settings.limit_otp)
        # The cap is per hour by contract; a differently-windowed setting is scaled to an hour.
        return max(1, round(item.amount * 3600 / item.get_expiry()))

    async def check(self, *, request_id: str, code: str) -> Checked:
        """Check `code` against the request; a right code works once, then never again."""
        key = self._request_key(request_id)
        maximum = self._settings.otp_max_attempts
        try:
            # Count the try before comparing, so parallel guesses cannot exceed the cap; in one
            # script, so a try never lands on a request another guess has just deleted (HINCRBY
            # would re-create it, without its TTL, and restart the count).
            counted = await self._redis.eval(_COUNT_TRY, 1, key)
            if not counted:
                return Checked(CheckOutcome.EXPIRED)
            tries, stored_hash = int(counted[0]), str(counted[1])
            cnic = self._sealer.unseal(str(counted[2]), where=key)
            who = str(counted[3])
            if cnic is None or not who:
                # Not sealed for this request (the secret key changed, it was altered, or a
                # release before sealing wrote it): as if it had expired.
                return Checked(CheckOutcome.EXPIRED)
            if tries > maximum:
                return await self._exhausted(who)
            # The digits a phone's Urdu or Arabic keyboard types are the same code (SPEC §2).
            typed = normalise_text(code)
            candidate = self._digest(typed) if len(typed) == CODE_DIGITS else ""
            if hmac.compare_digest(candidate, stored_hash):
                if await self._redis.delete(key):
                    return Checked(CheckOutcome.VERIFIED, cnic=cnic)
                return Checked(CheckOutcome.EXPIRED)
            if tries >= maximum:
                # Kept, burnt, until it would have expired: a later try, the right code
                # included, is still "too many" (429), not an unknown request ("expired").
                return await self._exhausted(who, last_try=True)
            return Checked(CheckOutcome.WRONG, tries_left=maximum - tries)
        except RedisError as exc:
            raise unavailable(exc) from exc

    async def _exhausted(self, who: str, *, last_try: bool = False) -> Checked:
        """A burnt code (for the CNIC whose keyed hash is `who`), with the wait before a new one
        can be asked for."""
        wait = await self._new_code_after(who)
        return Checked(CheckOutcome.EXHAUSTED, retry_after=wait, last_try=last_try)

    async def request_cnic(self, request_id: str) -> str | None:
        """The CNIC a live request is for (to resume a conversation), or None."""
        key = self._request_key(request_id)
        try:
            value = await self._redis.hget(key, "cnic")
        except RedisError as exc:
            raise unavailable(exc) from exc
        return self._sealer.unseal(value, where=key)
