"""Surge behaviour (issue 7): a short reply cache for anxious resends, and load shedding.

**Reply cache.** In a surge the same person sends the same CNIC again and again ("did it go
through?"). A resend of the same normalised message from the same sender on the same channel
within `RABTA_SURGE_REPLY_CACHE_SECONDS` (60 s) gets the reply stored in Redis for the first one,
without the engine, the registry, the contact row or the conversation being touched. Only
idempotent answers are cached: the coarse eligibility answer (`eligibility/*`) and the help menu,
never an OTP, PAY (personal), a grievance step, a rate-limit notice or anything said while a
conversation was in the middle of a flow. A cached entry is served only while the sender's
conversation is still idle with no numbered options pending and would be answered in the same
language (one Redis round trip reads the entry and the conversation together, and counts the
look-up's limits: see below).

What is still done on a cache hit, and why (the trade-off):

* the MessageSid is recorded, with the reply, in `inbound_messages` in one INSERT … ON CONFLICT
  DO NOTHING (one round trip): SPEC §6 says the same MessageSid twice performs the side effects
  once and returns the same reply, and every inbound message stays on record. A conflict (a
  Twilio retry of a message already answered) falls through to the normal path, which answers
  with the stored reply. Skipping this insert would save one database round trip but would make
  a retried MessageSid count twice and leave the message log incomplete;
* a CNIC resend still counts against the *sender's* look-up limit (SPEC §4, "10 look-ups per
  sender per hour"): the cache never lets a sender get more paid replies than without it. When
  the sender has no stored conversation (most people in a surge), the script that reads the
  entry counts it too, so a resend costs one Redis command and one INSERT in all. A
  refused sender falls through to the normal path, which answers "try again after …" once and
  then stays silent. The *CNIC's* limit is not counted: a resend to the same sender reveals
  nothing new about that CNIC;
* metrics count the message (`rabta_messages_total`, `rabta_surge_reply_cache_total`).

How an entry gets to Redis: a look-up whose conversation stays blank (most people in a surge)
has nothing else to write there, so its entry waits in the worker (`CacheWrites`) for the next
look-up's script, which sets it before reading (the same round trip), or is sent by itself
after 50 ms when none comes. A resend reaching another worker within that window is answered
afresh, as if it were the first; one reaching this worker carries the entry and finds it.

What is skipped: the contact upsert (its `last_inbound_at` lags by at most the cache window), the
registry query (a registry change shows at most 60 s late), the engine, the render and the
conversation save (an idle conversation answered with eligibility or help is left as it was).

**Load shedding.** `LoadShedding` is an ASGI middleware with one `Gate` per worker process in
front of `/v1/` and `/webhooks/`. At most `RABTA_SURGE_MAX_IN_FLIGHT` requests run at once; the
next `RABTA_SURGE_MAX_QUEUE` wait in arrival order; a request that has waited
`RABTA_SURGE_MAX_WAIT_MS` is answered `503` with `Retry-After`. Once the queue has been full or
that old, the worker is overloaded: for one `MAX_WAIT`, every new request that cannot run at once
is answered `503` straight away, without queueing (those refusals do not stretch the episode: at
ordinary load every slot is sometimes busy); a sustained overload fills the queue again within
moments and starts another. Bursts are absorbed by the queue, sustained overload is answered
fast (CoDel's idea, simplified).
Shedding answers in microseconds, so an overloaded worker keeps answering (with 503s) instead of
letting requests time out in the database pool or in the gateway. An SMS or WhatsApp message is not
refused but *held* (api/held.py): Twilio does not send a message again after a 503, so a refusal
would lose it. It is stored (with whatever else the worker is holding at that moment, in one
INSERT), answered `200` with an empty TwiML, and answered by SMS through the outbox once a worker
has room; past `RABTA_SURGE_MAX_HOLDING` being held at once, it is refused too. A USSD hit is
refused (the session cannot wait for its screen), with the END screen "the service is busy,
please try again in a few minutes" in the default language rather than a 503, which a gateway
shows as a network error; a Telegram update gets a 503 (Telegram delivers it again), and `/v1`
calls a problem-details 503 with `Retry-After`.
`/healthz`, `/readyz`, `/metrics` and the agent console are never shed. Outbound replies already
go before bulk notifications: the outbox is claimed in (priority, id) order, OTP 0, replies 1,
notifications 5, bulk 9 (api/outbox/service.py).

Settings (environment): `RABTA_SURGE_REPLY_CACHE_SECONDS` (60; 0 turns the cache off),
`RABTA_SURGE_MAX_IN_FLIGHT` (8 per worker; 0 turns shedding off; keep it below half the
database pool, 30, since an SMS holds two connections at once), `RABTA_SURGE_MAX_QUEUE` (64),
`RABTA_SURGE_MAX_WAIT_MS` (2000: well inside Twilio's 15 s and a load balancer's timeouts, long
enough that a burst on a busy machine queues instead of bouncing), `RABTA_SURGE_RETRY_AFTER` (2 s),
`RABTA_SURGE_MAX_HOLDING` (8 per worker: SMS and WhatsApp messages being held at once; 0 refuses
them like the rest), `RABTA_SURGE_ANSWER_WITHIN_MS` (8000: an SMS or WhatsApp message not
answered by then, the database or Redis stalled rather than refusing, is held instead, a
USSD hit gets the busy END screen and a `/v1` read a 503 with `Retry-After`; with `MAX_WAIT` and
the hold itself, the gateway has its answer inside its 15 s: `answered_within`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any, TypeVar

from prometheus_client import Counter
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.bot_services import Counted, lookup_hits
from api.conversations import repository
from api.identity import cnic_digits, keyed_digest, normalise_text
from api.metrics import MESSAGES, SMS_SEGMENTS
from api.middleware import send_problem, send_response
from api.problems import SERVICE_BUSY
from api.ratelimit import Decision
from bot.dialogue import keywords
from bot.dialogue.keywords import Intent
from bot.dialogue.state import Conversation, Step
from bot.i18n import detect_language, keep_guess, says_no_language
from bot.segments import measure

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from api.runtime import Runtime
    from bot.channels.base import Inbound, Reply

log = logging.getLogger(__name__)

T = TypeVar("T")


class SurgeSettings(BaseSettings):
    """The surge knobs, read from the environment or an .env file, as api.settings is (kept
    apart from it)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    reply_cache_seconds: int = Field(60, alias="RABTA_SURGE_REPLY_CACHE_SECONDS", ge=0)
    max_in_flight: int = Field(8, alias="RABTA_SURGE_MAX_IN_FLIGHT", ge=0)
    max_queue: int = Field(64, alias="RABTA_SURGE_MAX_QUEUE", ge=0)
    max_wait_ms: int = Field(2000, alias="RABTA_SURGE_MAX_WAIT_MS", ge=1)
    retry_after: int = Field(2, alias="RABTA_SURGE_RETRY_AFTER", ge=1)
    max_holding: int = Field(8, alias="RABTA_SURGE_MAX_HOLDING", ge=0)
    answer_within_ms: int = Field(8000, alias="RABTA_SURGE_ANSWER_WITHIN_MS", ge=1)

    @property
    def retry_after_headers(self) -> list[tuple[bytes, bytes]]:
        """The `Retry-After` header of a busy answer."""
        return [(b"retry-after", str(self.retry_after).encode())]


@lru_cache
def get_surge_settings() -> SurgeSettings:
    """The process-wide surge settings (tests clear the cache to change them)."""
    return SurgeSettings()


REPLY_CACHE = Counter(
    "rabta_surge_reply_cache_total",
    "Reply cache for resends: hit, miss (looked, not served), stored.",
    ["channel", "outcome"],
)
SHED = Counter(
    "rabta_load_shed_total",
    "Requests answered 503 by the load-shedding gate (or a /v1 read or a Telegram update"
    " answered 503 for being late), by reason and path family.",
    ["reason", "family"],
)

# -- Reply cache --------------------------------------------------------------------------------

#: Channels whose resends are cached: the phone channels people re-send on when anxious.
CACHED_CHANNELS = frozenset({"sms", "whatsapp"})
#: Reply templates that may be cached: the same words for the same message, whoever asks again.
CACHEABLE_TEMPLATES = frozenset(
    {
        "eligibility/eligible",
        "eligibility/not_eligible",
        "eligibility/not_found",
        "eligibility/under_review",
        "help/menu",
    }
)
KEY_PREFIX = "rabta:surge:reply:"
#: How long an entry may wait for this worker's next look-up to carry it to Redis before it is
#: sent by itself (`CacheWrites`).
WRITE_BEHIND_SECONDS = 0.05
#: Entries waiting beyond which they are sent at once.
WRITE_BEHIND_MAX = 256


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One reply-cache entry: its key, its JSON value and seconds to live, and the channel it
    answered on (for the metric)."""

    channel: str
    key: str
    value: str
    seconds: int

    def queue_on(self, pipe: Any) -> None:
        """Add this entry's SET to a pipeline. NX: the first answer's window is not stretched by
        the resends that read it."""
        pipe.set(self.key, self.value, ex=self.seconds, nx=True)


class CacheWrites:
    """This worker's reply-cache entries on their way to Redis.

    An entry is written with the next look-up's script (`RateLimiter.read_then_hit_in_turn`
    takes them as its `writes`), not by a `SET` of its own: in a surge that script comes a few
    milliseconds later, and the entry costs no round trip (a redis-py command costs about a
    tenth of an SMS look-up's CPU). When no look-up comes within `WRITE_BEHIND_SECONDS`, or
    `WRITE_BEHIND_MAX` entries wait, they go by themselves in one pipeline. Until then a resend
    reaching another worker is answered afresh, as before the first answer was cached; one
    reaching this worker carries the entry and finds it. Lost when Redis is unreachable, like
    any other write to a cache.
    """

    def __init__(self, redis: aioredis.Redis, *, delay: float = WRITE_BEHIND_SECONDS) -> None:
        self._redis = redis
        self.delay = delay
        self._entries: list[CacheEntry] = []
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, entry: CacheEntry) -> None:
        self._entries.append(entry)
        if len(self._entries) >= WRITE_BEHIND_MAX:
            self._flush_soon()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.delay, self._flush_soon)

    def take(self) -> list[CacheEntry]:
        """The waiting entries, for the caller to write (they wait no more)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        entries, self._entries = self._entries, []
        return entries

    @staticmethod
    def written(entries: Iterable[CacheEntry]) -> None:
        for entry in entries:
            REPLY_CACHE.labels(entry.channel, "stored").inc()

    def _flush_soon(self) -> None:
        task = asyncio.get_running_loop().create_task(self.flush())
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def flush(self) -> None:
        """Write the waiting entries now (the timer's way, and at shutdown)."""
        entries = self.take()
        if not entries:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for entry in entries:
                    entry.queue_on(pipe)
                await pipe.execute()
        except RedisError:
            log.warning("reply cache: %d entries not written (Redis)", len(entries))
            return
        self.written(entries)


@dataclass(frozen=True, slots=True)
class Resend:
    """What a message is as far as the cache is concerned: its key material and intent."""

    material: str
    intent: Intent
    #: The language the engine would detect from the text (None: no letters in it).
    detected: str | None
    #: Only keywords, numbers and "ok" (`HELP`, a CNIC): it keeps the conversation's guess so
    #: far rather than read as English (`bot.i18n.guess_language`).
    says_no_language: bool
    #: True when answering it is a look-up that counts against the sender's limit.
    lookup: bool
    #: The CNIC's 13 digits, for a CNIC.
    cnic: str | None = None


def cache_subject(text: str) -> Resend | None:
    """The cache key material of a message, or None when its answer is never cached.

    A CNIC is keyed by its 13 digits (however it was typed), help by the word "help": the reply
    does not depend on how the request was written, only on the language (checked on reading).
    """
    normalised = normalise_text(text)
    command = keywords.parse(normalised)
    if command.intent is Intent.CNIC:
        digits = cnic_digits(command.argument)
        if digits is None:
            return None
        return Resend(
            f"cnic:{digits}",
            Intent.CNIC,
            detect_language(normalised),
            says_no_language(normalised),
            lookup=True,
            cnic=digits,
        )
    if command.intent in (Intent.HELP, Intent.EMPTY):
        return Resend(
            "help",
            command.intent,
            detect_language(normalised),
            says_no_language(normalised),
            lookup=False,
        )
    return None


def cache_key(secret: str, channel: str, sender: str, material: str) -> str:
    """A keyed hash: Redis never holds a phone number or a CNIC in clear."""
    return KEY_PREFIX + keyed_digest(secret.encode(), channel, sender, material)


def is_idle(conversation: Conversation) -> bool:
    """Idle with no numbered options pending: a message means the same as it did last time."""
    return conversation.step is Step.IDLE and not conversation.options


def expected_language(conversation: Conversation, subject: Resend, default_language: str) -> str:
    """The language bot.dialogue.engine.handle would answer in (same precedence, and the same
    guess as `bot.i18n.guess_language`)."""
    previous = conversation.guessed_language
    detected = subject.detected
    if detected == "en" and previous is not None and subject.says_no_language:
        detected = previous
    detected = keep_guess(detected, previous)
    return conversation.language or detected or previous or default_language


def cacheable(replies: Iterable[Reply]) -> bool:
    """True when every reply is one that may be served again from the cache."""
    templates = [reply.template for reply in replies]
    return bool(templates) and all(t in CACHEABLE_TEMPLATES for t in templates)


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    text: str
    language: str
    intent: str
    #: The eligibility status the answer gave (`inbound_messages.outcome`, for the dashboard).
    outcome: str | None = None


def outcome_of(replies: Iterable[Reply]) -> str | None:
    """The status an eligibility answer gave, as the normal path records it."""
    for reply in replies:
        if reply.template.startswith("eligibility/"):
            return reply.template.removeprefix("eligibility/")
    return None


@dataclass(frozen=True, slots=True)
class Lookup:
    """What `lookup` found: a cached answer, or the conversation for the normal path."""

    answer: CachedAnswer | None = None
    #: The sender's conversation, read in the same round trip as the cache entry (None when
    #: nothing was read: the normal path loads it itself).
    conversation: Conversation | None = None
    #: What the message is, when its answer is one the cache could hold (a CNIC look-up, help).
    subject: Resend | None = None
    #: The subject's cache key (a keyed hash), so that saving the answer does not derive it again.
    key: str | None = None
    #: A CNIC sent in a blank conversation: the look-up's limits, counted with the read
    #: (api/bot_services.py `LookupServices`).
    counted: Counted | None = None


#: A look-up's limit that a try at the same message counted, and that let it through, before the
#: message was held (`Inbound.counted`).
PASSED_BEFORE = Decision(
    allowed=True, limit=0, remaining=0, reset_at=0.0, retry_after=0, degraded=False
)


def counted_in_full(inbound: Inbound, counted: Counted) -> bool:
    """Whether `counted` (a `Lookup`'s) is every limit of the look-up, each letting it through."""
    cnic, decisions = counted
    hits = lookup_hits(inbound.channel, inbound.sender, cnic)
    return len(decisions) == len(hits) and all(d.allowed for d in decisions)


async def lookup(runtime: Runtime, inbound: Inbound) -> Lookup:
    """The cached reply to a resend, with its MessageSid recorded; else what was read on the way
    (with the cache turned off, only that).

    One Redis command reads the cache entry and the conversation together, so a message that
    is not a resend costs no extra round trip: its conversation comes back for the normal path.
    For a CNIC that command is the rate limiter's script, which also counts the look-up when
    neither exists (`Lookup.counted`); for help, and for a held message whose first try counted
    its look-up (`Inbound.counted`: it passed then, and is not counted twice), an `MGET`.
    Never raises for Redis or database
    trouble: the normal path then answers (or fails) as it would without the cache.
    """
    seconds = get_surge_settings().reply_cache_seconds
    message_id = inbound.message_id
    if (
        inbound.channel not in CACHED_CHANNELS
        or not message_id
        or inbound.contact_phone is not None
        or inbound.media
    ):
        return Lookup()
    subject = cache_subject(inbound.text)
    if subject is None:
        return Lookup()
    settings = runtime.settings
    key = cache_key(settings.secret_key, inbound.channel, inbound.sender, subject.material)
    conversation_key = runtime.conversations.key(inbound.channel, inbound.sender)
    reads = [key, conversation_key] if seconds > 0 else [conversation_key]
    counted: Counted | None = None
    try:
        if subject.cnic is not None and not inbound.counted:
            # A CNIC with nothing stored for its sender (no cached answer, a blank conversation)
            # takes the look-up lane, whose flow counts the look-up first thing: counted here,
            # in the same round trip as the read, only when nothing was found. A cached answer
            # found beside a blank conversation counts the sender's limit alone, as serving it
            # does (and as the lane would first, should the answer not serve after all).
            # The entries this worker's earlier answers left to write go with it (CacheWrites).
            writes = runtime.cache_writes.take()
            found = await runtime.rate_limiter.read_then_hit_in_turn(
                reads,
                lookup_hits(inbound.channel, inbound.sender, subject.cnic),
                when_first_found=1 if seconds > 0 else 0,
                writes=[(entry.key, entry.value, entry.seconds) for entry in writes],
            )
            if found is None:  # Redis unreachable: the normal path answers as it can
                return Lookup()
            CacheWrites.written(writes)
            values, decisions = found
            if decisions is not None:
                counted = subject.cnic, decisions
        else:
            # One command, not a pipeline of two GETs: redis-py's pipeline costs more than MGET.
            values = await runtime.redis.mget(*reads)
            if subject.cnic is not None:
                # A held message whose first try counted its look-up, and was let through.
                hits = lookup_hits(inbound.channel, inbound.sender, subject.cnic)
                counted = subject.cnic, [PASSED_BEFORE] * len(hits)
    except RedisError:
        return Lookup()
    raw_entry, raw_conversation = values if seconds > 0 else (None, values[0])
    # With the cache off, what was read still serves: the conversation, and the subject that
    # sends a look-up down the look-up lane (api/conversations/service.py).
    # None stored is a blank conversation (bot/dialogue/state.py stores none): idle, in the
    # language of the text or the default, which the cached answer's language is checked
    # against like any other's.
    conversation = runtime.conversations.parse(
        inbound.channel, inbound.sender, raw_conversation, key=conversation_key
    ) or Conversation(channel=inbound.channel, address=inbound.sender)
    # Whatever was counted ahead goes with the message: a look-up's limits when nothing was
    # found, the sender's alone when a cached answer was (LookupServices counts the rest).
    missed = Lookup(conversation=conversation, subject=subject, key=key, counted=counted)
    if not raw_entry:
        return missed
    try:
        entry = json.loads(raw_entry)
        answer = CachedAnswer(str(entry["t"]), str(entry["l"]), str(entry["i"]), entry.get("o"))
    except (ValueError, KeyError, TypeError):
        return missed
    if not is_idle(conversation) or answer.language != expected_language(
        conversation, subject, settings.default_language
    ):
        REPLY_CACHE.labels(inbound.channel, "miss").inc()
        return missed
    if subject.lookup:
        decision = (
            counted[1][0]
            if counted is not None
            else await runtime.rate_limiter.hit("sender", inbound.sender, remaining=False)
        )
        if not decision.allowed:
            # The normal path says "try again after …" once, then nothing. Not through the
            # look-up lane (no subject): that would count this message against the limit again.
            return Lookup(conversation=conversation)
    if not await _record(runtime, inbound.channel, message_id, answer):
        # A retried MessageSid: the normal path answers with the stored reply.
        return Lookup(conversation=conversation)
    REPLY_CACHE.labels(inbound.channel, "hit").inc()
    MESSAGES.labels(inbound.channel, answer.language, answer.intent).inc()
    if inbound.channel == "sms":
        cost = measure(answer.text)
        SMS_SEGMENTS.labels(cost.encoding).inc(cost.segments)
    return Lookup(answer=answer)


async def _record(runtime: Runtime, channel: str, message_id: str, answer: CachedAnswer) -> bool:
    """Claim the MessageSid with its reply in one autocommitted statement (no BEGIN/COMMIT
    round trips); False if it was already there."""
    try:
        async with runtime.db.autocommit() as session:
            earlier = await repository.record_answered(
                session,
                channel=channel,
                external_id=message_id,
                intent=answer.intent,
                outcome=answer.outcome,
                language=answer.language,
                reply=answer.text,
            )
            return earlier is None
    except SQLAlchemyError:
        log.warning("reply cache: could not record the message; answering the normal way")
        return False


async def save(
    runtime: Runtime,
    inbound: Inbound,
    conversation: Conversation,
    *,
    was_idle: bool,
    replies: Iterable[Reply],
    language: str,
    intent: str,
    text: str,
    found: Lookup | None = None,
) -> None:
    """Save the conversation and, when the reply may be served again, cache it, in one round
    trip; an entry with no conversation to send beside it is left to `CacheWrites` (no round
    trip). Redis trouble is logged, never raised (the reply still goes). `found` is what `lookup`
    said of this message: its subject and key are taken from it instead of derived again."""
    replies = list(replies)
    entry: CacheEntry | None = None
    seconds = get_surge_settings().reply_cache_seconds
    # What `lookup` derived from this message's text, when it got that far.
    known = (found.subject, found.key) if found and found.subject and found.key else None
    if (
        seconds > 0
        and inbound.channel in CACHED_CHANNELS
        and was_idle
        and text
        and is_idle(conversation)
        and inbound.contact_phone is None
        and not inbound.media
        and cacheable(replies)
        and (subject := known[0] if known else cache_subject(inbound.text)) is not None
    ):
        secret = runtime.settings.secret_key
        key = (
            known[1]
            if known
            else cache_key(secret, inbound.channel, inbound.sender, subject.material)
        )
        value = {"t": text, "l": language, "i": intent, "o": outcome_of(replies)}
        entry = CacheEntry(inbound.channel, key, json.dumps(value, ensure_ascii=False), seconds)
    if entry is not None and runtime.conversations.nothing_to_send(conversation):
        # A blank conversation is not stored (most people in a surge): the entry, alone to
        # send, goes with this worker's next look-up instead of a round trip of its own.
        runtime.cache_writes.add(entry)
        return
    try:
        if entry is None:
            await runtime.conversations.save(conversation)
            return
        async with runtime.redis.pipeline(transaction=False) as pipe:
            await runtime.conversations.save(conversation, client=pipe)
            entry.queue_on(pipe)
            await pipe.execute()
    except RedisError:
        runtime.redis_away.happened(RedisAway.CONVERSATION_UNSAVED)
        log.info("conversation state not saved (Redis)")
        return
    CacheWrites.written([entry])


# -- Load shedding ------------------------------------------------------------------------------

ADMITTED = None
QUEUE_FULL = "queue_full"
QUEUE_STALE = "queue_stale"
WAITED_TOO_LONG = "waited_too_long"
#: Not the gate's: a `/v1` read called off for being late (`ReadsAnsweredInTime`), or a
#: Telegram update answered 503 for being late (its handling goes on).
ANSWER_LATE = "answer_late"


@dataclass(eq=False)
class _Waiter:
    since: float
    future: asyncio.Future[str | None] | None = None
    outcome: str | None = field(default=None)
    done: bool = False


class Gate:
    """A concurrency limit with a bounded, time-limited FIFO queue, for one worker process.

    `admit()` decides synchronously (tests drive it with a fake clock): None (run now), a reason
    to shed, or a `_Waiter` to wait on. `enter()` is the async form the middleware uses.
    """

    def __init__(
        self,
        *,
        max_in_flight: int,
        max_queue: int,
        max_wait: float,
        clock: Callable[[], float] = time.monotonic,
        timers: bool = True,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.max_in_flight = max_in_flight
        self.max_queue = max_queue
        self.max_wait = max_wait
        self._clock = clock
        self._timers = timers
        self.in_flight = 0
        self._waiters: deque[_Waiter] = deque()
        #: Until this moment, a request that cannot run at once is shed without queueing.
        self._shedding_until = float("-inf")

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def oldest_wait(self) -> float:
        """Seconds the oldest queued request has waited (0 with an empty queue)."""
        return self._clock() - self._waiters[0].since if self._waiters else 0.0

    def admit(self) -> _Waiter | str | None:
        """None: run now (counted in flight); a reason string: shed; a waiter: queued."""
        now = self._clock()
        stale = self._expire(now)
        if self.in_flight < self.max_in_flight and not self._waiters:
            self.in_flight += 1
            return ADMITTED
        if stale or now < self._shedding_until:
            # Overloaded: refuse at once for one budget after the queue was found full or too
            # old. These refusals do not stretch the episode: at ordinary load every slot is
            # sometimes busy, so counting them kept a worker shedding long after one stall. A
            # sustained overload fills the queue again within moments and starts another.
            return QUEUE_STALE
        if len(self._waiters) >= self.max_queue:
            self._shedding_until = now + self.max_wait
            return QUEUE_FULL
        waiter = _Waiter(since=now)
        self._waiters.append(waiter)
        return waiter

    def try_take(self, *, spare: int) -> bool:
        """A slot for background work, taken only when `spare` more would still be free and
        nobody waits or is being refused: True when taken (call `release()` after)."""
        now = self._clock()
        if (
            self._waiters
            or now < self._shedding_until
            or self.in_flight + spare >= self.max_in_flight
        ):
            return False
        self.in_flight += 1
        return True

    def release(self) -> None:
        """A request finished: hand its slot to the oldest waiter still within its time."""
        self.in_flight -= 1
        now = self._clock()
        self._expire(now)
        while self._waiters and self.in_flight < self.max_in_flight:
            waiter = self._waiters.popleft()
            self.in_flight += 1
            self._settle(waiter, ADMITTED)

    def cancel(self, waiter: _Waiter) -> None:
        """A waiting request went away (client disconnected): forget it, or give back its slot."""
        if waiter.done:
            if waiter.outcome is ADMITTED:
                self.release()
            return
        waiter.done = True
        try:
            self._waiters.remove(waiter)
        except ValueError:
            pass

    def _expire(self, now: float) -> int:
        """Shed every queued request that has waited max_wait; how many were shed."""
        expired = 0
        while self._waiters and now - self._waiters[0].since >= self.max_wait:
            self._settle(self._waiters.popleft(), WAITED_TOO_LONG)
            expired += 1
        if expired:
            # The queue is as old as the budget: refuse fast for one budget's time rather than
            # make newcomers wait the whole budget only to be refused.
            self._shedding_until = now + self.max_wait
        return expired

    def _settle(self, waiter: _Waiter, outcome: str | None) -> None:
        if waiter.done:
            return
        waiter.done = True
        waiter.outcome = outcome
        if waiter.future is not None and not waiter.future.done():
            waiter.future.set_result(outcome)

    def _timed_out(self, waiter: _Waiter) -> None:
        if waiter.done:
            return
        try:
            self._waiters.remove(waiter)
        except ValueError:
            return
        self._settle(waiter, WAITED_TOO_LONG)
        self._shedding_until = self._clock() + self.max_wait

    async def enter(self) -> str | None:
        """Wait for a slot: None once admitted (call `release()` after), or the shed reason."""
        decision = self.admit()
        if not isinstance(decision, _Waiter):
            return decision
        waiter = decision
        loop = asyncio.get_running_loop()
        waiter.future = loop.create_future()
        timer = loop.call_later(self.max_wait, self._timed_out, waiter) if self._timers else None
        try:
            return await waiter.future
        except asyncio.CancelledError:
            self.cancel(waiter)
            raise
        finally:
            if timer is not None:
                timer.cancel()


def _family(path: str) -> str:
    return "v1" if path.startswith("/v1/") else "webhooks"


def worker_gate(settings: SurgeSettings | None = None) -> Gate | None:
    """The gate of one worker process, as the settings say (None with shedding off)."""
    settings = settings or get_surge_settings()
    if settings.max_in_flight <= 0:
        return None
    return Gate(
        max_in_flight=settings.max_in_flight,
        max_queue=settings.max_queue,
        max_wait=settings.max_wait_ms / 1000,
    )


#: The scope key a request refused by the gate carries into the app when it is to be held
#: (api/held.py): its value is the reason it was refused.
HOLD = "rabta.hold"


async def answered_within(answering: Coroutine[Any, Any, T], *, call_off: bool = True) -> T | None:
    """What `answering` returns, or None when it has not returned within
    `RABTA_SURGE_ANSWER_WITHIN_MS`: the database or Redis stalls rather than refusing (a network
    partition, a lock held too long), and the gateway must have an answer before it gives up
    (Twilio and Africa's Talking wait 15 s). It runs as a task of its own, called off when late
    but not waited for: its clean-up can stall as long as the database does (asyncpg asks the
    server to cancel the statement, over a new connection, and waits for that, and a cancel
    that reaches the server before the statement does is ignored). With `call_off=False` a
    late task goes on, unwatched but for a failure's log line: for an answer that reaches the
    person another way than the response (a Telegram reply is a Bot API call), whose message
    is delivered again and then found recorded."""
    loop = asyncio.get_running_loop()
    task = loop.create_task(answering)
    ready: asyncio.Future[None] = loop.create_future()
    wake = partial(_wake, ready)
    task.add_done_callback(wake)
    late = loop.call_later(get_surge_settings().answer_within_ms / 1000, wake)
    try:
        await ready
    finally:
        late.cancel()
    if task.done():
        return task.result()
    if call_off:
        task.cancel()
    task.add_done_callback(_outcome_read)
    return None


def _wake(ready: asyncio.Future[None], *_: object) -> None:
    if not ready.done():
        ready.set_result(None)


def _outcome_read(task: asyncio.Future[Any]) -> None:
    """A late answer's outcome, read so that asyncio does not report it as never retrieved."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("an answer given up on for being late failed: %s", type(exc).__name__)


#: Requests that are held instead of refused: messages whose gateway would drop them on a 503
#: (Twilio calls a fallback URL, if there is one, and does not send the message again).
HELD_PATHS = frozenset({"/webhooks/twilio/messaging"})
#: A refused USSD hit gets the END screen "busy, try again in a few minutes" (a gateway shows a
#: 503 as a network error, the person none the wiser); a 503 only while the app has no runtime.
USSD_PATH = "/webhooks/ussd"


class Episode:
    """Something many requests meet at once, as an operator reads it in the log: a WARNING the
    first time, and one more once `quiet` seconds have passed without it (or the worker stops:
    `close()`), saying how long it lasted and how many requests met it, by what was done with
    them (`kinds` are always listed, others once they happen). The metrics count each request;
    these two lines say when, without a WARNING per request. Each kind of episode names itself
    and its first line (`begins`, with one `%s`: what the first request met)."""

    name = "episode"
    begins = "episode: %s"
    kinds: tuple[str, ...] = ()

    def __init__(self, *, quiet: float = 10.0, logger: logging.Logger = log) -> None:
        self.quiet = quiet
        self._log = logger
        self._since: float | None = None
        self._last = 0.0
        self._counts: dict[str, int] = {}
        self._timer: asyncio.TimerHandle | None = None

    def happened(self, kind: str, detail: str | None = None) -> None:
        """One more request met it, and `kind` is what was done with it (`detail`, or `kind`,
        is what the first line says)."""
        now = time.monotonic()
        if self._since is None:
            self._since, self._counts = now, dict.fromkeys(self.kinds, 0)
            self._log.warning(self.begins, detail or kind)
            self._timer = asyncio.get_running_loop().call_later(self.quiet, self._over_yet)
        self._last = now
        self._counts[kind] = self._counts.get(kind, 0) + 1

    def _over_yet(self) -> None:
        """The timer armed when the episode began: say it is over, or look again later."""
        quiet_for = time.monotonic() - self._last
        if quiet_for < self.quiet:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.quiet - quiet_for, self._over_yet)
            return
        self._over("")

    def _over(self, note: str) -> None:
        since, self._since, self._timer = self._since, None, None
        if since is None:
            return
        counts = ", ".join(f"{kind}: {count}" for kind, count in self._counts.items())
        self._log.warning("%s over: %.1f s; %s%s", self.name, self._last - since, counts, note)

    def close(self) -> None:
        """The worker stops: an episode still under way is reported as it stands."""
        if self._timer is not None:
            self._timer.cancel()
        self._over(" (the worker is stopping)")


class Overload(Episode):
    """One worker's overload: its gate turning requests away, refused or held."""

    REFUSED = "refused (503)"
    HELD = "held (answered by SMS)"
    name = "overload"
    begins = (
        "overload: this worker's gate is full (%s): refusing (503, USSD's busy screen) and "
        "holding SMS and WhatsApp messages until it has room"
    )
    kinds = (REFUSED, HELD)

    def turned_away(self, reason: str, *, held: bool) -> None:
        self.happened(self.HELD if held else self.REFUSED, reason)


class RedisAway(Episode):
    """One worker answering without Redis: what each message could not read or keep there."""

    CONVERSATION_UNREAD = "conversation not read (answered afresh)"
    CONVERSATION_UNSAVED = "conversation not saved"
    USSD_UNREAD = "USSD session not read (busy screen)"
    USSD_UNSAVED = "USSD session not saved (the next step says dial again)"
    TELEGRAM_BUTTON = "Telegram long button left out"
    name = "redis away"
    begins = (
        "redis away: answering without what Redis keeps (first: %s); conversations start "
        "afresh, USSD sessions end, rate limits count in each worker"
    )


class LateAnswers(Episode):
    """One worker's answers not given in time, or given up on, because the database or Redis
    stalls or is away: each webhook and `/v1` read says what it did instead (`happened`)."""

    HELD_LATE = "SMS held (no answer in time)"
    HELD_AWAY = "SMS held (database away)"
    KEPT_IN_REDIS = "kept in Redis (database away)"
    USSD_BUSY = "USSD busy screen (no answer in time)"
    USSD_BUSY_AWAY = "USSD busy screen (database away)"
    V1_503 = "/v1 503 (no answer in time)"
    TELEGRAM_503 = "Telegram 503 (not handled in time)"
    TELEGRAM_AWAY = "Telegram update failed (database away)"
    #: Any other request the database's absence answered 503 (api/problems.py).
    AWAY_503 = "503 (database away)"
    name = "late answers"
    begins = (
        "late answers: the database or Redis stalls or is away (first: %s); SMS and WhatsApp "
        "messages are held, USSD hits get the busy screen, /v1 reads and Telegram updates a 503"
    )


class LoadShedding:
    """ASGI middleware: 503 + Retry-After at once when the worker's gate is full (see above);
    an SMS or WhatsApp message is held instead, while fewer than `max_holding` are being held."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: SurgeSettings | None = None,
        gate: Gate | None = None,
        overload: Overload | None = None,
        prefixes: tuple[str, ...] = ("/v1/", "/webhooks/"),
    ) -> None:
        self.app = app
        self.settings = settings or get_surge_settings()
        self.prefixes = prefixes
        self._gate = gate
        self._holding = 0
        self._ussd_busy: bytes | None = None
        #: Its end-of-overload timer is called off by whoever runs the app (`close()`).
        self.overload = overload or Overload()

    @property
    def gate(self) -> Gate:
        if self._gate is None:
            gate = worker_gate(self.settings)
            if gate is None:
                raise RuntimeError("load shedding is off (RABTA_SURGE_MAX_IN_FLIGHT=0)")
            self._gate = gate
        return self._gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or self.settings.max_in_flight <= 0
            or not scope["path"].startswith(self.prefixes)
        ):
            await self.app(scope, receive, send)
            return
        gate = self.gate
        reason = await gate.enter()
        if reason is not None:
            held = scope["path"] in HELD_PATHS and self._holding < self.settings.max_holding
            self.overload.turned_away(reason, held=held)
            if held:
                # Stored now and answered later (api/held.py): about a third of an answer's CPU,
                # and nothing is lost. Past `max_holding` at once, refused like the rest.
                self._holding += 1
                try:
                    await self.app({**scope, HOLD: reason}, receive, send)
                finally:
                    self._holding -= 1
                return
            SHED.labels(reason, _family(scope["path"])).inc()
            await self._refuse(scope, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            gate.release()

    def _ussd_busy_screen(self, scope: Scope) -> bytes | None:
        """The END screen for a refused USSD hit, rendered once (None before the app's
        runtime exists)."""
        if self._ussd_busy is None:
            runtime = _runtime_of(scope)
            if runtime is None:
                return None
            # Imported here: the USSD webhook reaches this module through the services it calls.
            from api.webhooks.ussd import error_screen

            self._ussd_busy = error_screen(runtime).encode()
        return self._ussd_busy

    async def _refuse(self, scope: Scope, send: Send) -> None:
        screen = self._ussd_busy_screen(scope) if scope["path"] == USSD_PATH else None
        if screen is not None:  # a last screen: nothing to retry
            await send_response(send, 200, b"text/plain; charset=utf-8", screen)
        elif scope["path"].startswith("/v1/"):
            await _send_v1_busy(send, self.settings)
        else:
            await send_response(
                send,
                503,
                b"text/plain; charset=utf-8",
                b"busy, retry later\n",
                self.settings.retry_after_headers,
            )


def _runtime_of(scope: Scope) -> Runtime | None:
    """The app's runtime, once its lifespan has made it (None before, or outside an app)."""
    return getattr(getattr(scope.get("app"), "state", None), "runtime", None)


#: What a `/v1` call refused for want of room, or called off for being late, is told (a 503
#: problem document with Retry-After).
V1_BUSY = "Too busy right now; try again in a moment."


async def _send_v1_busy(send: Send, settings: SurgeSettings) -> None:
    """The 503 of a `/v1` call refused for want of room or called off for being late."""
    await send_problem(send, 503, V1_BUSY, type_=SERVICE_BUSY, headers=settings.retry_after_headers)


class ReadsAnsweredInTime:
    """ASGI middleware: a `/v1` read (GET or HEAD) not answered within
    `RABTA_SURGE_ANSWER_WITHIN_MS` is answered 503 + Retry-After and called off
    (`answered_within`), as a webhook's late answer is held or ended with a busy screen. The
    database or Redis stalls rather than refusing (a partition, a lock held too long), and a
    partner's client would otherwise wait for its own timeout, or for TCP's, minutes later. A
    write (a grievance filed, a code sent) is left to finish: called off after it committed,
    its 503 would have the client file or send it again."""

    def __init__(self, app: ASGIApp, *, prefix: str = "/v1/") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            or not scope["path"].startswith(self.prefix)
        ):
            await self.app(scope, receive, send)
            return
        started = called_off = False

        async def send_unless_called_off(message: Message) -> None:
            nonlocal started
            if called_off:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        async def answer() -> bool:
            await self.app(scope, receive, send_unless_called_off)
            return True

        if await answered_within(answer()) is None:
            called_off = True
            SHED.labels(ANSWER_LATE, "v1").inc()
            runtime = _runtime_of(scope)
            if runtime is not None:
                runtime.late.happened(LateAnswers.V1_503)
            log.info("a /v1 read not answered in time: 503")
            if not started:
                await _send_v1_busy(send, get_surge_settings())
