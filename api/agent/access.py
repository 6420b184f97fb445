"""Who may see a caller's record, and for how long (SPEC §3 applied to the console).

    search CNIC ──▶ lookup (coarse status only)
        ├─ send code ──▶ caller reads it back ──▶ verified ───────────────┐
        ├─ agent asks ──▶ supervisor approves (with the agent's reason) ───┼─▶ grant: this agent,
        └─ supervisor/admin overrides directly, with a reason ─────────────┘   this sign-in,
                                                                                this CNIC, 30 min

A *lookup* is one call: the CNIC an agent searched, kept on the server under a random id so the
CNIC never travels in a URL (browser history, proxy logs, Referer). A *grant* lets one agent see
one CNIC's details until it expires or the agent signs out, whichever is first: a grant belongs
to the console session it was made in, so signing out ends it and a new sign-in starts with none.
All of it lives in Redis and expires by itself.

What names a caller is sealed there (api/sealed.py: the searched CNIC, a grant's and an override
request's reason), each value for the key it is stored under, and a grant's key is a keyed hash
of agent, session and CNIC: a dump of Redis shows no CNIC and no reason. A value that does not
open (the secret key rotated, an altered value, one moved from another key) is gone: the call
has ended (the agent searches again), the request is no more, the record is closed. The keys
are not those the release before sealing used, so during a rolling upgrade neither release
reads the other's values (each finds nothing, as after their expiry).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from api.sealed import sealer_for
from api.settings import Settings

PREFIX = "rabta:agent"
#: Where the sealed values live: not the keys the release before sealing read in clear.
SEALED = f"{PREFIX}:sealed"
#: How long an agent may see a record once the caller is verified or an override approved.
GRANT_SECONDS = 30 * 60
#: How long a lookup (one call) stays open.
LOOKUP_SECONDS = 2 * 60 * 60
#: How long a request for a supervisor's approval waits.
OVERRIDE_REQUEST_SECONDS = 60 * 60


class AccessUnavailable(Exception):
    """Redis cannot be reached: no record opens (fail closed)."""


@dataclass
class Lookup:
    """One caller's CNIC as one agent searched it."""

    id: str
    agent: str
    cnic: str
    created_at: float
    #: The OTP request of the code sent to the registered mobile, and where it went (masked).
    code_request_id: str | None = None
    code_sent_to: str | None = None
    override_request_id: str | None = None
    #: A supervisor turned the override request down: who, shown to the agent.
    override_denied_by: str | None = None


@dataclass(frozen=True)
class Grant:
    """Why and until when an agent may see a CNIC's record."""

    agent: str
    basis: str  # "otp" or "override"
    reason: str
    approved_by: str | None
    granted_at: float
    expires_at: float

    @property
    def seconds_left(self) -> int:
        return max(0, int(self.expires_at - time.time()))

    def audit_reason(self) -> str:
        """How the audit log explains a view under this grant."""
        if self.basis == "otp":
            return "caller verified by code"
        by = f" (approved by {self.approved_by})" if self.approved_by else ""
        return f"override{by}: {self.reason}"


@dataclass(frozen=True)
class OverrideRequest:
    """An agent's request to open a record without the caller's code."""

    id: str
    agent: str
    cnic: str
    cnic_masked: str
    reason: str
    lookup_id: str
    requested_at: float = field(default_factory=time.time)
    #: The agent's console session the request was made in: an approval opens the record there.
    session: str = ""


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


class CallerAccess:
    """Lookups, grants and override requests, in Redis."""

    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self._redis = redis
        self._key = hashlib.sha256(b"rabta-agent-access:" + settings.secret_key.encode()).digest()
        self._sealer = sealer_for(settings.secret_key)

    def _hash(self, text: str) -> str:
        # A keyed hash, not the CNIC, names the key: Redis key names show up in monitoring.
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()[:40]

    def _grant_key(self, agent: str, cnic: str, session: str) -> str:
        who = "\x00".join((agent, session, cnic))
        return f"{SEALED}:grant:{self._hash(who)}"

    @staticmethod
    def _lookup_key(lookup_id: str) -> str:
        return f"{SEALED}:lookup:{lookup_id}"

    @staticmethod
    def _override_key(request_id: str) -> str:
        return f"{SEALED}:override:{request_id}"

    def _asked_key(self, lookup_id: str) -> str:
        """Which request one call has waiting (its only one: `request_override`)."""
        return f"{PREFIX}:asked:{self._hash('lookup:' + lookup_id)}"

    def _session_grants(self, session: str) -> str:
        """The set of the grant keys made in one console session (ended with it)."""
        return f"{PREFIX}:grants:{self._hash('session:' + session)}"

    # -- lookups -----------------------------------------------------------------------------

    async def open_lookup(self, *, agent: str, cnic: str) -> Lookup:
        lookup = Lookup(
            id=secrets.token_urlsafe(16), agent=agent, cnic=cnic, created_at=time.time()
        )
        await self._set(self._lookup_key(lookup.id), asdict(lookup), LOOKUP_SECONDS)
        return lookup

    async def get_lookup(self, lookup_id: str, *, agent: str) -> Lookup | None:
        """The lookup if it is this agent's and still open (another agent's is not found)."""
        if not lookup_id or len(lookup_id) > 64:
            return None
        data = await self._get(self._lookup_key(lookup_id))
        if data is None or data.get("agent") != agent:
            return None
        return Lookup(**data)

    async def save_lookup(self, lookup: Lookup) -> None:
        await self._set(self._lookup_key(lookup.id), asdict(lookup), None)

    # -- grants ------------------------------------------------------------------------------

    async def grant(
        self,
        *,
        agent: str,
        cnic: str,
        session: str,
        basis: str,
        reason: str,
        approved_by: str | None = None,
        once: bool = False,
    ) -> Grant | None:
        """Open `cnic`'s record to `agent` in the console session `session` (its key) only.
        With `once`, None when it is open to her there already (a supervisor's override form
        sent twice: a double click, two posts at once), which stays as it was."""
        now = time.time()
        grant = Grant(agent, basis, reason, approved_by, now, now + GRANT_SECONDS)
        key = self._grant_key(agent, cnic, session)
        written = await self._set(key, asdict(grant), GRANT_SECONDS, only_new=once)
        if not written:
            if await self.grant_for(agent=agent, cnic=cnic, session=session) is not None:
                return None
            # One that no longer opens (the secret key rotated) or has just ended: replaced.
            await self._set(key, asdict(grant), GRANT_SECONDS)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.sadd(self._session_grants(session), key)
                pipe.expire(self._session_grants(session), GRANT_SECONDS)
                await pipe.execute()
        except RedisError as exc:
            raise AccessUnavailable from exc
        return grant

    async def grant_for(self, *, agent: str, cnic: str, session: str) -> Grant | None:
        """This agent's live grant for this CNIC in this console session, if any."""
        data = await self._get(self._grant_key(agent, cnic, session))
        if data is None or data.get("expires_at", 0) <= time.time():
            return None
        return Grant(**data)

    async def revoke(self, *, agent: str, cnic: str, session: str) -> None:
        try:
            await self._redis.delete(self._grant_key(agent, cnic, session))
        except RedisError as exc:
            raise AccessUnavailable from exc

    async def end_session(self, session: str) -> int:
        """End every grant made in one console session (sign-out); how many were live."""
        index = self._session_grants(session)
        try:
            keys = [
                k.decode() if isinstance(k, bytes) else str(k)
                for k in await self._redis.smembers(index)
            ]
            ended = int(await self._redis.delete(*keys)) if keys else 0
            await self._redis.delete(index)
        except RedisError as exc:
            raise AccessUnavailable from exc
        return ended

    # -- override requests -------------------------------------------------------------------

    async def request_override(
        self, lookup: Lookup, *, reason: str, cnic_masked: str, session: str
    ) -> OverrideRequest | None:
        """Ask the supervisors to open the call's record; None when the call has a request
        waiting already (its form sent twice: a double click, two posts at once), which stays
        the only one until it is decided or expires."""
        request = OverrideRequest(
            id=secrets.token_urlsafe(12),
            agent=lookup.agent,
            cnic=lookup.cnic,
            cnic_masked=cnic_masked,
            reason=reason,
            lookup_id=lookup.id,
            session=session,
        )
        # Written before it is claimed as the call's: whoever finds the claim taken finds the
        # request it names, unless that one is gone (decided, expired, no longer readable).
        await self._set(self._override_key(request.id), asdict(request), OVERRIDE_REQUEST_SECONDS)
        asked = self._asked_key(lookup.id)
        try:
            if not await self._redis.set(asked, request.id, nx=True, ex=OVERRIDE_REQUEST_SECONDS):
                waiting = await self._redis.get(asked)
                if waiting is not None and await self.get_override(_text(waiting)) is not None:
                    await self._redis.delete(self._override_key(request.id))
                    return None
                await self._redis.set(asked, request.id, ex=OVERRIDE_REQUEST_SECONDS)
        except RedisError as exc:
            raise AccessUnavailable from exc
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zadd(f"{PREFIX}:overrides", {request.id: request.requested_at})
                pipe.zremrangebyscore(
                    f"{PREFIX}:overrides", 0, time.time() - OVERRIDE_REQUEST_SECONDS
                )
                await pipe.execute()
        except RedisError as exc:
            raise AccessUnavailable from exc
        lookup.override_request_id = request.id
        lookup.override_denied_by = None
        await self.save_lookup(lookup)
        return request

    async def pending_overrides(self) -> list[OverrideRequest]:
        """Requests waiting for a supervisor, oldest first."""
        try:
            await self._redis.zremrangebyscore(
                f"{PREFIX}:overrides", 0, time.time() - OVERRIDE_REQUEST_SECONDS
            )
            ids = [
                i.decode() if isinstance(i, bytes) else str(i)
                for i in await self._redis.zrange(f"{PREFIX}:overrides", 0, 199)
            ]
        except RedisError as exc:
            raise AccessUnavailable from exc
        requests = []
        for request_id in ids:
            data = await self._get(self._override_key(request_id))
            if data is not None:
                requests.append(OverrideRequest(**data))
        return requests

    async def get_override(self, request_id: str) -> OverrideRequest | None:
        data = await self._get(self._override_key(request_id)) if request_id else None
        return OverrideRequest(**data) if data else None

    async def take_override(self, request_id: str) -> OverrideRequest | None:
        """Remove a pending request and return it; None if another supervisor was first."""
        if not request_id or len(request_id) > 64:
            return None
        key = self._override_key(request_id)
        try:
            raw = await self._redis.getdel(key)
            await self._redis.zrem(f"{PREFIX}:overrides", request_id)
        except RedisError as exc:
            raise AccessUnavailable from exc
        data = self._opened(raw, key)
        if not data:
            return None
        taken = OverrideRequest(**data)
        try:
            # Decided: the call may ask again (after a refusal).
            await self._redis.delete(self._asked_key(taken.lookup_id))
        except RedisError as exc:
            raise AccessUnavailable from exc
        return taken

    # -- storage -----------------------------------------------------------------------------

    async def _set(
        self, key: str, value: dict[str, object], ttl: int | None, *, only_new: bool = False
    ) -> bool:
        """Store `value` sealed under `key`; with `only_new`, only if the key is not there
        (False: it was)."""
        payload = self._sealer.seal(json.dumps(value, ensure_ascii=False), where=key)
        try:
            if ttl is None:
                written = await self._redis.set(key, payload, keepttl=True, nx=only_new)
            else:
                written = await self._redis.set(key, payload, ex=ttl, nx=only_new)
        except RedisError as exc:
            raise AccessUnavailable from exc
        return bool(written)

    async def _get(self, key: str) -> dict[str, Any] | None:
        try:
            raw = await self._redis.get(key)
        except RedisError as exc:
            raise AccessUnavailable from exc
        return self._opened(raw, key)

    def _opened(self, raw: str | bytes | None, key: str) -> dict[str, Any] | None:
        """What `_set` stored under `key`; None for nothing, or for a value that does not open
        (or read): taken as gone, as after its expiry."""
        return self._sealer.unseal_object(raw, where=key)
