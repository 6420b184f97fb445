"""Console sessions in Redis: a random id in an HttpOnly cookie, everything else on the server.

Server-side sessions can be revoked (logout, a deactivated account) and carry nothing a stolen
cookie could be read for. Redis keeps only a hash of the id, so a copy of Redis opens nothing.
A session ends after an hour without a request or twelve hours after sign-in, whichever is first.
Whose it was outlives it by an hour, so that what forms sent just after it ended held can be
kept for its agent's next sign-in (`keep_unsent`, `take_unsent`); signing out ends that too.

What a form held that was refused, or sent after its session ended, is kept for that form on
its own page (`Flash.page`, `FORM_OF`), not for whichever page comes next: an error page, the
queue or another grievance's page shown in between takes none of it (`take_flashes` takes a
page's own forms' words only, `Forms`). Several forms' words are kept at once (two tabs), a
bounded number (`MAX_FLASHES`, `MAX_UNSENT`), each for an hour at most.

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
from redis.exceptions import RedisError, WatchError

from api.agent.csrf import tokens_match
from api.sealed import sealer_for
from api.settings import Settings, get_settings

log = logging.getLogger(__name__)

PREFIX = "rabta:agent:session"
IDLE_SECONDS = 60 * 60
MAX_SECONDS = 12 * 60 * 60
#: Forms sent after a session ended whose words it keeps at most (the newest), for its agent's
#: next sign-in: one browser's tabs, each with a form sent.
MAX_UNSENT = 10
#: Flash messages a session holds at most, forms' words waiting for their page included (a loop
#: of redirects must not grow it): room for every form kept after the session before it ended.
MAX_FLASHES = 2 * MAX_UNSENT
#: Times a write of the forms kept after a session ended is tried when other writes overtake it.
_WATCH_TRIES = 10
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
#: The form each of those fields is in, by a name of the form's own: what one form held is
#: kept, and given back, as one. A grievance's page shows a supervisor the status form and an
#: agent the escalation form, never both: one name for the two.
FORM_OF = {
    "note": "note",
    "caller-note": "caller-note",
    "status-note": "status",
    "escalate-note": "status",
    "to": "status",
    "override-reason": "reason",
    "request-reason": "reason",
    "category": "grievance",
    "description": "grievance",
    "language": "grievance",
}


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
    #: form's page, so the agent corrects her words instead of typing them again.
    kept: dict[str, str] = field(default_factory=dict)
    #: The path of the page the form whose words are `kept` is on: the message and the words
    #: are shown there only, whatever other pages are shown first (required with `kept`;
    #: without words, the message is for the next page, whichever it is).
    page: str = ""
    #: The id of the field the message is about (a refused form's): on the page, that field is
    #: marked invalid and described by the message, for a screen reader reaching it.
    field: str = ""

    @property
    def form(self) -> str:
        """The name of the form whose words this gives back ("" for none)."""
        return next((FORM_OF[name] for name in self.kept if name in FORM_OF), "")


@dataclass(frozen=True)
class Forms:
    """The forms a page shows (`FORM_OF` names) and its path: the words kept for those forms
    come back into them there, and no other page takes them."""

    page: str
    names: frozenset[str]

    @classmethod
    def on(cls, page: str, *names: str) -> Forms:
        return cls(page, frozenset(names))


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


def _flashes_key(key: str) -> str:
    return f"{key}:sealed:flash"


def _keys_of(key: str) -> tuple[str, ...]:
    """A session's key and those of what it keeps beside it (all ended with it), the release
    before sealing's in clear included."""
    return (
        key,
        _flashes_key(key),
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
        form needs a live session (CSRF, the audit log). Every form sent so is kept beside the
        others (one browser's tabs), the newest `MAX_UNSENT`, each for an hour."""
        if not kept or not session_id or len(session_id) > 128:
            return False
        key = _key(session_id)
        unsent = _unsent_key(key)
        try:
            owner = await self._redis.hget(f"{key}:owner", "csrf")
            if owner is None or not tokens_match(_text(owner), csrf_token):
                return False
            now = time.time()
            added = {"page": page, "kept": kept, "at": now}
            # Two tabs sending at once must not keep only one: the forms already kept are
            # read and written back with this one in a transaction that is tried again if
            # another request wrote meanwhile.
            async with self._redis.pipeline(transaction=True) as pipe:
                for _ in range(_WATCH_TRIES):
                    try:
                        await pipe.watch(unsent)
                        forms = self._unsent_forms(await pipe.get(unsent), where=unsent, now=now)
                        forms = [*forms, added][-MAX_UNSENT:]
                        payload = json.dumps({"forms": forms}, ensure_ascii=False)
                        pipe.multi()
                        pipe.set(unsent, self._sealer.seal(payload, where=unsent), ex=IDLE_SECONDS)
                        await pipe.execute()
                        return True
                    except WatchError:
                        continue
        except RedisError as exc:
            raise SessionsUnavailable from exc
        log.info("a form sent after its session ended was not kept (other forms kept at once)")
        return False

    async def take_unsent(self, session_id: str, *, agent_id: int, said: str) -> list[Flash]:
        """The forms' words this browser's previous session kept, if `agent_id` is its agent,
        oldest first, each to be kept again in her new session for its own page: those sent
        after the session ended (`keep_unsent`, with the message `said`) and those of refused
        forms not yet shown again (a second sign-in, from another tab's sign-in page). Taken, so
        they come back once. Another member of staff signing in at the same browser gets
        nothing (and the sign-in ends the old session, and with it what it kept)."""
        if not session_id or len(session_id) > 128:
            return []
        key = _key(session_id)
        unsent = _unsent_key(key)
        flashes = _flashes_key(key)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hget(f"{key}:owner", "agent_id")
                pipe.get(unsent)
                pipe.delete(unsent)
                pipe.lrange(flashes, 0, -1)
                pipe.delete(flashes)
                owner, raw, _, waiting, _ = await pipe.execute()
        except RedisError as exc:
            raise SessionsUnavailable from exc
        if owner is None or _text(owner) != str(agent_id):
            return []
        now = time.time()
        refused = [
            flash
            for item in waiting
            if (flash := self._read(item, where=flashes, now=now)) is not None and flash.page
        ]
        sent = [
            Flash("error", said, {}, kept=dict(form["kept"]), page=str(form["page"]))
            for form in self._unsent_forms(raw, where=unsent, now=now)
        ]
        return refused + sent

    def _unsent_forms(
        self, raw: str | bytes | None, *, where: str, now: float
    ) -> list[dict[str, Any]]:
        """The forms a `keep_unsent` value holds that are still within their hour (the release
        before kept one, without its time): page, kept (ids → text) and when."""
        data = self._opened(raw, where=where)
        if data is None:
            return []
        forms = data.get("forms", [data])
        kept = []
        for form in forms if isinstance(forms, list) else []:
            try:
                at = float(form.get("at", now))
                fields = {str(k): str(v) for k, v in dict(form["kept"]).items()}
                if at > now - IDLE_SECONDS and fields:
                    kept.append({"page": str(form["page"]), "kept": fields, "at": at})
            except (AttributeError, KeyError, TypeError, ValueError):
                continue
        return kept

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
        """Keep a message for the next page this session shows, or, one giving a form's words
        back (`Flash.kept`), for that form's page (held back until the commit, inside a
        request's console transaction: `defer_flashes`)."""
        if flash.kept and not flash.page:
            raise ValueError("a flash that gives a form's words back needs the form's page")
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
                # No words, nothing to wait for: shown on the next page, whichever it is.
                "page": flash.page if flash.kept else "",
                "field": flash.field,
                "at": time.time(),
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

    async def waiting(self, session: ConsoleSession, forms: Forms) -> dict[str, str]:
        """The words kept for `forms` on their page that it does not show yet (a complaint for
        a caller whose record is closed), left in place for when it does."""
        try:
            raw = await self._redis.lrange(self._flashes(session), 0, -1)
        except RedisError as exc:
            raise SessionsUnavailable from exc
        where, now = self._flashes(session), time.time()
        kept: dict[str, str] = {}
        for item in raw:
            flash = self._read(item, where=where, now=now)
            if flash is not None and flash.page == forms.page and flash.form in forms.names:
                kept.update(flash.kept)
        return kept

    async def take_flashes(
        self, session: ConsoleSession, forms: Forms | None = None
    ) -> list[Flash]:
        """The messages kept for this page, removed so they show once: those for the next page
        whichever it is, and the words kept for `forms` on it (the newest of each form: another
        kept for the same form comes back when the page shows again). The words of other forms
        and pages stay for their own; an error page shows no forms."""
        where = self._flashes(session)
        try:
            raw = await self._redis.lrange(where, 0, -1)
        except RedisError as exc:
            raise SessionsUnavailable from exc
        now = time.time()
        taken: list[tuple[str | bytes, Flash | None]] = []  # None: dropped, not shown
        newest: dict[str, tuple[str | bytes, Flash]] = {}
        for item in raw:
            flash = self._read(item, where=where, now=now)
            if flash is None or not flash.page:
                taken.append((item, flash))
            elif forms is not None and flash.page == forms.page and flash.form in forms.names:
                newest[flash.form] = (item, flash)
        taken.extend(newest.values())
        if not taken:
            return []
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for item, _ in taken:
                    pipe.lrem(where, 1, _text(item))
                removed = await pipe.execute()
        except RedisError as exc:
            raise SessionsUnavailable from exc
        # A message another request took meanwhile (two tabs loading at once) shows there only.
        return [flash for (_, flash), gone in zip(taken, removed, strict=True) if gone and flash]

    def _read(self, item: str | bytes, *, where: str, now: float) -> Flash | None:
        """A kept flash as it was written; None for one that does not open (or read), and for
        a form's words past their hour."""
        data = self._opened(item, where=where)
        flash = _flash_of(data)
        if flash is None or data is None or not flash.page:
            return flash
        try:
            at = float(data.get("at", now))
        except (TypeError, ValueError):
            return None
        return flash if at > now - IDLE_SECONDS else None

    def _opened(self, raw: str | bytes | None, *, where: str) -> dict[str, Any] | None:
        """A value sealed for `where`, read; None when it does not open (or read): no message,
        no text given back, as if it had expired."""
        return self._sealer.unseal_object(raw, where=where)

    @staticmethod
    def _index(agent_id: int) -> str:
        return f"{PREFIX}s:{agent_id}"

    @staticmethod
    def _flashes(session: ConsoleSession) -> str:
        return _flashes_key(session.key)


def _flash_of(data: dict[str, Any] | None) -> Flash | None:
    """A kept message as it was written; None for one that did not open (or read)."""
    if data is None:
        return None
    try:
        return Flash(
            str(data["kind"]),
            str(data["message"]),
            dict(data.get("args") or {}),
            {str(k): str(v) for k, v in dict(data.get("labels") or {}).items()},
            {str(k): str(v) for k, v in dict(data.get("kept") or {}).items()},
            str(data.get("page") or ""),
            str(data.get("field") or ""),
        )
    except (KeyError, TypeError, ValueError):
        return None
