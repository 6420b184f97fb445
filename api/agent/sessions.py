"""Console sessions in Redis: a random id in an HttpOnly cookie, everything else on the server.

Server-side sessions can be revoked (logout, a deactivated account) and carry nothing a stolen
cookie could be read for. Redis keeps only a hash of the id, so a copy of Redis opens nothing.
A session ends after an hour without a request or twelve hours after sign-in, whichever is first.
Whose it was outlives it by an hour, so that what a form sent just after it ended held can be
kept for its agent's next sign-in (`keep_unsent`, `take_unsent`); signing out ends that too.

The messages kept for the next page and what a form sent after its session ended held (a
grievance's description, a note about a caller, a reason: personal text) are sealed
(api/sealed.py), each for the key it is kept under. One that does not open (the secret key
rotated, an altered value, one moved from another session) is no message and gives back no
text, as if it had expired. Their keys are not those the release before sealing used, so during
a rolling upgrade neither release reads the other's; signing out deletes both.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from api.agent.csrf import tokens_match
from api.sealed import sealer_for
from api.settings import Settings, get_settings

log = logging.getLogger(__name__)

PREFIX = "rabta:agent:session"
IDLE_SECONDS = 60 * 60
MAX_SECONDS = 12 * 60 * 60
#: Flash messages a session holds at most (a loop of redirects must not grow it).
MAX_FLASHES = 10
#: The kind of a flash that only gives text back to a page's fields, with no message to show.
KEPT_ONLY = "kept"
#: The console's fields whose words are given back to the agent rather than lost (a refused
#: form, a form sent after her session ended): their ids in the pages → the most kept of each.
#: A code the caller reads back is never among them, nor a CNIC typed in the search box.
KEEPABLE_TEXT = {
    "note": 1000,
    "caller-note": 1000,
    "status-note": 1000,
    "escalate-note": 1000,
    "description": 1000,
    "override-reason": 500,
    "request-reason": 500,
}
#: Choices that come back with the text typed beside them (a category, a status, a language).
KEEPABLE_CHOICES = {"category": 32, "language": 32, "to": 32}


def keepable(fields: Mapping[str, object]) -> dict[str, str]:
    """What of `fields` (ids → values) may be kept for the agent: known fields only, each cut
    to its size; nothing at all unless some text was written (a choice alone is no loss)."""
    sizes = KEEPABLE_TEXT | KEEPABLE_CHOICES
    kept = {
        name: value[: sizes[name]]
        for name, value in fields.items()
        if name in sizes and isinstance(value, str)
    }
    if not any(kept.get(name, "").strip() for name in KEEPABLE_TEXT):
        return {}
    return kept


class SessionsUnavailable(Exception):
    """Redis cannot be reached: nobody can sign in or be recognised (fail closed)."""


@dataclass(frozen=True)
class ConsoleSession:
    """A signed-in member of staff's session."""

    key: str
    agent_id: int
    csrf_token: str
    created_at: float


@dataclass(frozen=True)
class Flash:
    """A message shown once on the next page: a catalog msgid and its arguments."""

    kind: str  # "ok" or "error"
    message: str
    args: dict[str, Any]
    #: Arguments that are stored values (a status), by the kind of label that translates them
    #: (`i18n.LABELS`), so they are shown in the agent's language and not as stored.
    labels: dict[str, str] = field(default_factory=dict)
    #: What a refused form held (its fields' ids → the text typed), put back in them on the
    #: page the refusal leads to, so the agent corrects her words instead of typing them again.
    kept: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Unsent:
    """What a form sent after its session had ended held, kept for its agent's next sign-in:
    the page the form is on and its fields' ids → the text typed."""

    page: str
    kept: dict[str, str]


def cookie_name(settings: Settings) -> str:
    # `__Host-` makes browsers refuse the cookie unless Secure, host-only and Path=/, so no
    # sibling subdomain can plant or overwrite it; browsers need https for that.
    return "__Host-rabta_agent" if secure_cookies(settings) else "rabta_agent"


def secure_cookies(settings: Settings) -> bool:
    """Cookies are Secure in production and whenever the console is served over https."""
    return settings.is_production or settings.public_base_url.startswith("https://")


def _text(value: str | bytes) -> str:
    # The clients are made with decode_responses=True; redis-py's types cannot know that.
    return value.decode() if isinstance(value, bytes) else value


def _key(session_id: str) -> str:
    return f"{PREFIX}:{hashlib.sha256(session_id.encode()).hexdigest()}"


def _unsent_key(key: str) -> str:
    return f"{key}:sealed:unsent"


def _keys_of(key: str) -> tuple[str, ...]:
    """A session's key and those of what it keeps beside it (all ended with it), the release
    before sealing's in clear included."""
    return (
        key,
        f"{key}:sealed:flash",
        f"{key}:owner",
        _unsent_key(key),
        f"{key}:flash",
        f"{key}:unsent",
    )


class SessionStore:
    """Creates, finds and ends console sessions."""

    def __init__(self, redis: aioredis.Redis, settings: Settings | None = None) -> None:
        self._redis = redis
        self._sealer = sealer_for((settings or get_settings()).secret_key)
        #: Messages kept back until the request's transaction has committed (`defer_flashes`).
        self._deferred: list[tuple[ConsoleSession, Flash]] | None = None

    def defer_flashes(self) -> None:
        """Keep this request's messages back until `write_deferred`: a page must never say
        "Grievance G-… filed" for a transaction that did not commit (the database gone at
        the commit, a restart, a failover)."""
        if self._deferred is None:
            self._deferred = []

    async def write_deferred(self) -> None:
        """Keep the messages held back for the next page, now that what they report is done.
        Redis away: the messages are lost, not the work (which is committed), so no error."""
        deferred, self._deferred = self._deferred or [], None
        for session, flash in deferred:
            try:
                await self.flash(session, flash)
            except SessionsUnavailable:
                log.info("console message not kept for the next page (Redis)")
                return

    async def create(self, *, agent_id: int) -> tuple[str, ConsoleSession]:
        """A fresh session (a new id every sign-in: a planted id never becomes a session)."""
        session_id = secrets.token_urlsafe(32)
        key = _key(session_id)
        now = time.time()
        csrf_token = secrets.token_urlsafe(32)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(
                    key,
                    mapping={"agent_id": agent_id, "csrf": csrf_token, "created": repr(now)},
                )
                pipe.expire(key, IDLE_SECONDS)
                # Whose the session was, and its forms' token, outlive it (by at most an hour
                # past its twelve), so a form sent just after it ended can still be known as
                # hers (`keep_unsent`). Signing out deletes them with the session.
                pipe.hset(f"{key}:owner", mapping={"agent_id": agent_id, "csrf": csrf_token})
                pipe.expire(f"{key}:owner", MAX_SECONDS + IDLE_SECONDS)
                pipe.sadd(self._index(agent_id), key)
                pipe.expire(self._index(agent_id), MAX_SECONDS)
                await pipe.execute()
        except RedisError as exc:
            raise SessionsUnavailable from exc
        return session_id, ConsoleSession(key, agent_id, csrf_token, now)

    async def load(self, session_id: str) -> ConsoleSession | None:
        """The live session with this id, its idle timer restarted; None if it has ended."""
        if not session_id or len(session_id) > 128:
            return None
        key = _key(session_id)
        try:
            stored = await self._redis.hgetall(key)
            if not stored:
                return None
            created = float(stored.get("created", "0"))
            remaining = MAX_SECONDS - (time.time() - created)
            if remaining <= 0:
                await self._redis.delete(key)
                return None
            await self._redis.expire(key, int(min(IDLE_SECONDS, remaining)) or 1)
        except RedisError as exc:
            raise SessionsUnavailable from exc
        return ConsoleSession(key, int(stored["agent_id"]), str(stored["csrf"]), created)

    async def end(self, session_id: str) -> None:
        """End one session (logout, or an old id presented at sign-in), and everything it
        kept."""
        try:
            await self._redis.delete(*_keys_of(_key(session_id)))
        except RedisError as exc:
            raise SessionsUnavailable from exc

    async def keep_unsent(
        self, session_id: str, *, csrf_token: str, page: str, kept: dict[str, str]
    ) -> bool:
        """Keep what a form sent after its session had ended (an hour without a request) held,
        for its agent's next sign-in in this browser (`take_unsent`); True when kept. Kept only
        for a session that was, and was not signed out of, and only with that session's own
        form token: nothing else can leave words for an agent to find. Nothing is *done*: a
        form needs a live session (CSRF, the audit log)."""
        if not kept or not session_id or len(session_id) > 128:
            return False
        key = _key(session_id)
        try:
            owner = await self._redis.hget(f"{key}:owner", "csrf")
            if owner is None or not tokens_match(_text(owner), csrf_token):
                return False
            unsent = _unsent_key(key)
            payload = json.dumps({"page": page, "kept": kept}, ensure_ascii=False)
            sealed = self._sealer.seal(payload, where=unsent)
            await self._redis.set(unsent, sealed, ex=IDLE_SECONDS)
        except RedisError as exc:
            raise SessionsUnavailable from exc
        return True

    async def take_unsent(self, session_id: str, *, agent_id: int) -> Unsent | None:
        """What `keep_unsent` kept of this ended session, if `agent_id` is its agent: taken, so
        it comes back once. Another member of staff signing in at the same browser gets
        nothing (and the sign-in ends the old session, and with it what it kept)."""
        if not session_id or len(session_id) > 128:
            return None
        key = _key(session_id)
        unsent = _unsent_key(key)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hget(f"{key}:owner", "agent_id")
                pipe.get(unsent)
                pipe.delete(unsent)
                owner, raw, _ = await pipe.execute()
        except RedisError as exc:
            raise SessionsUnavailable from exc
        if raw is None or owner is None or _text(owner) != str(agent_id):
            return None
        data = self._opened(raw, where=unsent)
        if data is None:
            return None
        try:
            kept = {str(k): str(v) for k, v in dict(data["kept"]).items()}
            return Unsent(str(data["page"]), kept)
        except (KeyError, TypeError, ValueError):
            return None

    async def end_all(self, *, agent_id: int) -> int:
        """End every session of one member of staff; how many there were."""
        index = self._index(agent_id)
        try:
            keys = [_text(k) for k in await self._redis.smembers(index)]
            if not keys:
                return 0
            ended = int(await self._redis.delete(*keys))
            await self._redis.delete(*(kept for key in keys for kept in _keys_of(key)[1:]))
            await self._redis.delete(index)
        except RedisError as exc:
            raise SessionsUnavailable from exc
        return ended

    async def flash(self, session: ConsoleSession, flash: Flash) -> None:
        """Keep a message for the next page this session shows (held back until the commit,
        inside a request's console transaction: `defer_flashes`)."""
        if self._deferred is not None:
            self._deferred.append((session, flash))
            return
        payload = json.dumps(
            {
                "kind": flash.kind,
                "message": flash.message,
                "args": flash.args,
                "labels": flash.labels,
                "kept": flash.kept,
            },
            ensure_ascii=False,
        )
        sealed = self._sealer.seal(payload, where=self._flashes(session))
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.rpush(self._flashes(session), sealed)
                pipe.ltrim(self._flashes(session), -MAX_FLASHES, -1)
                pipe.expire(self._flashes(session), IDLE_SECONDS)
                await pipe.execute()
        except RedisError as exc:
            raise SessionsUnavailable from exc

    async def kept_for_next_page(self, session: ConsoleSession) -> dict[str, str]:
        """The text the messages kept for the next page give back to its fields, left in
        place (the page takes them when it shows)."""
        try:
            raw = await self._redis.lrange(self._flashes(session), 0, -1)
        except RedisError as exc:
            raise SessionsUnavailable from exc
        where = self._flashes(session)
        return {
            str(name): str(text)
            for item in raw
            for name, text in _kept_of(self._opened(item, where=where)).items()
        }

    async def take_flashes(self, session: ConsoleSession) -> list[Flash]:
        """The messages kept for this page, removed so they show once."""
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.lrange(self._flashes(session), 0, -1)
                pipe.delete(self._flashes(session))
                raw, _ = await pipe.execute()
        except RedisError as exc:
            raise SessionsUnavailable from exc
        flashes = []
        where = self._flashes(session)
        for item in raw:
            data = self._opened(item, where=where)
            if data is None:
                continue
            try:
                flashes.append(
                    Flash(
                        str(data["kind"]),
                        str(data["message"]),
                        dict(data.get("args") or {}),
                        dict(data.get("labels") or {}),
                        dict(data.get("kept") or {}),
                    )
                )
            except (KeyError, TypeError, ValueError):
                continue
        return flashes

    def _opened(self, raw: str | bytes | None, *, where: str) -> dict[str, Any] | None:
        """A value sealed for `where`, read; None when it does not open (or read): no message,
        no text given back, as if it had expired."""
        return self._sealer.unseal_object(raw, where=where)

    @staticmethod
    def _index(agent_id: int) -> str:
        return f"{PREFIX}s:{agent_id}"

    @staticmethod
    def _flashes(session: ConsoleSession) -> str:
        return f"{session.key}:sealed:flash"


def _kept_of(data: dict[str, Any] | None) -> dict[str, Any]:
    """The text a kept message gives back to its page's fields (none for one that did not
    open)."""
    kept = (data or {}).get("kept")
    return kept if isinstance(kept, dict) else {}
