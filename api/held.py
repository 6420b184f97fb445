"""Messages held in a surge: taken when a worker is too busy to answer, answered when it is not.

Twilio does not send an inbound message again after a 503: it calls the number's fallback URL,
if one is set, and otherwise the message is gone (error 11200), with no reply to the person and
no record of what they sent, a complaint as much as a look-up. So the load-shedding gate
(api/surge.py) does not refuse an SMS or WhatsApp message it has no room for: it *holds* it.
The webhook checks the signature as always, stores the message in `held_messages` (`Holds`:
the messages a worker holds while its previous write runs go in one INSERT and one commit, so
holding costs a fraction of answering) and answers `200` with an empty TwiML
`<Response/>`: no reply yet. Past `RABTA_SURGE_MAX_HOLDING` messages being held at once in a
worker, the message is refused with a 503 as before.

The same goes for a message the worker had room for but could not answer because the database
went away under it (a restart, a failover): it is held rather than refused. While the database
is away a held message is kept in Redis (the list `rabta:held:spill:sealed`, each entry sealed:
api/sealed.py), and the first worker to find the database back moves it into `held_messages`
(`unspill`: one worker at a time, a group removed from Redis only once its INSERT has
committed). Only with the database and Redis both away, or with `SPILL_MOST` messages (about
300 MB) already kept, is the message refused with a 503.

A kept message is never dropped for want of opening it. One sealed under another secret key
(`RABTA_SECRET_KEY` changed between its keeping and its moving) is set aside, still sealed, in
`rabta:held:spill:unopened` (no expiry), logged as an error and counted
(`rabta_held_messages_total{channel="unknown",outcome="unopened"}`); every worker tries those
again when it starts, so a worker started with the secret key they were sealed under takes them
in. The list the release before sealing kept its messages in, in clear (`rabta:held:spill`),
is still taken in (a rolling upgrade) and never written; that release never reads the sealed
one, which it could not read.

Each API worker process answers held messages in the background (`Drainer`) whenever its gate
has room to spare: half its slots free, nobody queued, no overload episode. The live traffic
goes first; a held message takes a slot like any request. Held messages are taken oldest first,
by any worker of any replica (`FOR UPDATE SKIP LOCKED` on PostgreSQL), and each goes the way of
every other message (`receive`: the MessageSid claimed, the contact, the conversation, the
flow, the record in `inbound_messages`); its reply goes out through the outbox (`kind=reply`,
priority 1, the dedup key `held:<channel>:<MessageSid>`) in the transaction that deletes the
held row. The person gets the answer by SMS a little later instead of not at all.

Guarantees:

* A held message is answered at least once and its reply enqueued at most once. A claim is a
  lease (`claimed_until`, 60 s): a worker that dies midway leaves the row to the next one,
  which meets the MessageSid already recorded (a replay: the stored reply) and the outbox's
  dedup key.
* A message whose answer fails (the database or Redis away) is tried again after a backoff
  (10 s, doubling, at most 10 minutes); after `MAX_ATTEMPTS` it is kept, logged and counted
  (`rabta_held_messages_total{outcome="given_up"}`), for an operator to look at: `rabta held
  stats` counts what is held, `rabta held retry` gives the given-up ones fresh tries.
* A message held twice (a gateway's retry) is stored once.
* A sender's held messages are answered one after another, oldest first (`by_sender`), as they
  would have been on arrival. Anxious resends of one question (the same CNIC, or HELP) then find
  the first one's answer in the reply cache (api/surge.py): they are recorded with it and send
  nothing more (`outcome="already_answered"`), so a sender who tried five times in a surge gets
  one SMS, not five. The same goes for a held resend of a question answered live moments before.
  In a long backlog a resend is answered minutes after the first, when the cache has let its
  entry go: an answer whose words an SMS already took to the same phone, for a message held in
  the last `SAME_REPLY_SECONDS` (30 minutes), sends nothing either, whichever worker or
  replica answers each of them, at whatever moment.
* A message held after a try at answering it counted its look-up's limits (a late answer, the
  database gone after the first statement) is answered without counting them again
  (`HeldMessage.counted`): a stall does not spend a sender's look-ups twice.
* A held message is answered as things stand when it is answered: if the person sent something
  else that was answered at once meanwhile, the held one is answered after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, cast

from prometheus_client import Counter
from redis.exceptions import LockError, RedisError
from sqlalchemy import Executable, Table, and_, bindparam, case, delete, func, or_, select, update

from api import hot
from api.db import Database, claim_rows, insert_for, utc
from api.identity import keyed_digest
from api.outbox.service import PRIORITY_REPLY, enqueue
from api.outbox.worker import nap
from api.problems import DatabaseStalled, is_database_unavailable
from api.registry.models import HeldMessage
from api.sealed import PREFIX as SEALED_PREFIX
from api.sealed import Sealer, sealer_for
from api.settings import get_settings
from api.surge import Gate, LateAnswers
from bot.channels.base import Inbound

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.lock import Lock

    from api.runtime import Runtime

log = logging.getLogger(__name__)

#: Tries before a held message is given up (kept for an operator, no longer tried).
MAX_ATTEMPTS = 8
LEASE_SECONDS = 60
BACKOFF_BASE_SECONDS = 10.0
BACKOFF_CAP_SECONDS = 600.0
#: How often a worker with nothing held of its own looks for others' (a replica that stopped).
POLL_SECONDS = 5.0
#: How often a worker with messages to answer looks again for room in its gate.
BUSY_PAUSE_SECONDS = 0.1
#: Messages answered at once by one worker, at most (each takes a slot of its gate).
BATCH = 4
#: Held messages written together, at most.
GROUP_MOST = 64
#: Where a message is kept while the database is away (a Redis list of JSON, each entry sealed
#: for this key), and the lock that lets one worker at a time move them into `held_messages` once
#: it is back.
SPILL_KEY = "rabta:held:spill:sealed"
SPILL_LOCK = "rabta:held:spill:lock"
#: Where the release before sealing kept them, in clear: still moved, never written.
EARLIER_SPILL_KEY = "rabta:held:spill"
#: Kept messages that did not open (sealed under another secret key): set aside, still sealed,
#: never dropped, tried again by each worker as it starts.
UNOPENED_KEY = "rabta:held:spill:unopened"
#: Messages Redis keeps at most (about 300 bytes each): past that, a long outage gets 503s again
#: rather than filling Redis, which the rate limits and conversations need too.
SPILL_MOST = 1_000_000
#: How long an SMS answering a held message stands for the same words to the same phone: a
#: resend held behind the first in a long backlog is answered minutes after it (the reply cache
#: keeps a minute), and gets no second SMS saying the same (a keyed hash in Redis, claimed by
#: the first before its reply is enqueued, so two workers answering two resends at once send
#: one, and given back if that fails).
SAME_REPLY_SECONDS = 30 * 60
SENT_PREFIX = "rabta:held:sent:"
#: How long a hold waits for its write before keeping the message in Redis instead: a stalled
#: database (a partition, a lock) must not keep Twilio waiting past its 15 s.
WRITE_WITHIN = 2.0

HELD = Counter(
    "rabta_held_messages_total",
    "Messages held in a surge (held), kept in Redis while the database was away (spilled), "
    "answered later (answered), answered by the reply to a resend of theirs, nothing sent "
    "(already_answered), failed once (failed), given up after every try (given_up), or kept in "
    "Redis and sealed under another secret key, set aside (unopened, channel unknown).",
    ["channel", "outcome"],
)

TABLE = cast(Table, HeldMessage.__table__)


@cache
def _hold_statement(dialect: str) -> Executable:
    return (
        insert_for(dialect, TABLE)
        .values(
            channel=bindparam("channel"),
            external_id=bindparam("external_id"),
            sender=bindparam("sender"),
            phone=bindparam("phone"),
            text=bindparam("text"),
            received_at=bindparam("now"),
            counted=bindparam("counted"),
            media=bindparam("media"),
            attempts=0,
        )
        .on_conflict_do_nothing(index_elements=["channel", "external_id"])
    )


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Holds:
    """Where a worker writes the messages it holds, in groups: one write at a time, and each
    write takes every message that came while the one before it ran (at most `most`), in one
    INSERT and one commit. A message held alone is written at once; in an overload, a commit
    per message would load PostgreSQL, and the answers' own commits with it, about as much as
    answering them (docs/performance.md, item 39)."""

    def __init__(
        self,
        db: Database,
        redis: Redis,
        *,
        late: LateAnswers,
        most: int = GROUP_MOST,
        secret: str | None = None,
    ) -> None:
        self.db = db
        self.redis = redis
        self.most = most
        #: The secret key what it keeps in Redis is sealed under (`unspill` opens it with it).
        self.secret = secret if secret is not None else get_settings().secret_key
        self._sealer = sealer_for(self.secret)
        #: The worker's, closed with it (an episode's timer must not outlive its app).
        self.late = late
        self._rows: list[tuple[dict[str, object], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def hold(self, inbound: Inbound, *, database_away: bool = False) -> None:
        """Store a message to be answered later (once, however often its provider sends it).
        With the database away (or already known to be: `database_away`), or its write not done
        within `WRITE_WITHIN` (a stalled database), it is kept in Redis until a worker moves it
        (`unspill`; a write that lands late stores nothing twice: a MessageSid is stored once).
        Raises what the write raised (`DatabaseStalled` for one not tried or not done in time)
        when Redis cannot take it either: the caller answers 503."""
        row: dict[str, object] = {
            "channel": inbound.channel,
            "external_id": inbound.message_id,
            "sender": inbound.sender,
            "phone": inbound.phone,
            "text": inbound.text,
            "now": utcnow(),
            "counted": inbound.counted,
            "media": inbound.media,
        }
        failure: Exception = DatabaseStalled("the database is away")
        if not database_away:
            try:
                await self._write_within(row)
            except Exception as exc:
                if not is_database_unavailable(exc):
                    raise
                failure = exc
            else:
                HELD.labels(inbound.channel, "held").inc()
                return
        if not await self._spill(row):
            raise failure
        HELD.labels(inbound.channel, "spilled").inc()

    async def _write_within(self, row: dict[str, object]) -> None:
        """The row written with the group under way or the next, within `WRITE_WITHIN`."""
        written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._rows.append((row, written))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_all())
        deadline = asyncio.timeout(WRITE_WITHIN)
        try:
            async with deadline:
                await asyncio.shield(written)
        except TimeoutError as exc:
            if deadline.expired():
                # The write goes on: whatever it ends with is read here, not left unread.
                written.add_done_callback(lambda f: f.cancelled() or f.exception())
            raise DatabaseStalled(f"no write within {WRITE_WITHIN} s") from exc

    async def _spill(self, row: dict[str, object]) -> bool:
        """Keep a message in Redis while the database is away, sealed (the sender's number and
        the text, a CNIC in it); False when Redis cannot."""
        kept = {**row, "now": cast(dt.datetime, row["now"]).isoformat()}
        entry = self._sealer.seal(json.dumps(kept, ensure_ascii=False), where=SPILL_KEY)
        try:
            if await self.redis.llen(SPILL_KEY) >= SPILL_MOST:
                log.error("database unavailable and %d messages kept in Redis: refused", SPILL_MOST)
                return False
            await self.redis.rpush(SPILL_KEY, entry)
        except RedisError:
            return False
        self.late.happened(LateAnswers.KEPT_IN_REDIS)
        log.info("database unavailable: %s message kept in Redis until it is back", row["channel"])
        return True

    async def _write_all(self) -> None:
        try:
            while self._rows:
                rows, self._rows = self._rows[: self.most], self._rows[self.most :]
                await self._write(rows)
        finally:
            self._writer = None

    async def _write(self, rows: list[tuple[dict[str, object], asyncio.Future[None]]]) -> None:
        try:
            if len(rows) == 1:
                # Alone (no surge, a moment's stall): one statement on the driver, committing
                # by itself, as a look-up's record; a transaction would cost two more trips.
                async with self.db.autocommit() as connection:
                    statement = _hold_statement(connection.dialect.name)
                    await hot.rows(connection, statement, rows[0][0])
            else:
                async with self.db.engine.begin() as connection:
                    await connection.execute(
                        _hold_statement(connection.dialect.name), [params for params, _ in rows]
                    )
        except Exception as exc:
            for _, written in rows:
                if not written.done():
                    written.set_exception(exc)
        else:
            for _, written in rows:
                if not written.done():
                    written.set_result(None)

    async def close(self) -> None:
        """Let the write under way (and what waits for it) finish, at shutdown."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)


async def unspill(
    db: Database, redis: Redis, *, secret: str | None = None, most: int = GROUP_MOST
) -> int:
    """Move the messages kept in Redis while the database was away (`Holds._spill`, opened with
    `secret`) into `held_messages`, oldest first; how many. One worker at a time (a Redis lock);
    each group is removed from Redis only once its INSERT has committed, so a worker that dies
    midway leaves it to the next, whose INSERT meets the rows already there (a MessageSid is
    stored once). The earlier release's list, in clear, goes first (its messages are the older).
    A message that does not open is set aside in `UNOPENED_KEY`, in the step that removes its
    group from the list, never dropped."""
    return await _take_in(db, redis, (EARLIER_SPILL_KEY, SPILL_KEY), secret=secret, most=most) or 0


async def take_in_unopened(
    db: Database, redis: Redis, *, secret: str | None = None, most: int = GROUP_MOST
) -> int | None:
    """Try once more the kept messages set aside as not opening (`unspill`): those that open
    with `secret` (the key they were sealed under, back) are moved into `held_messages`, the
    others stay set aside; how many were moved, or None when another worker was moving kept
    messages (try again later)."""
    return await _take_in(db, redis, (UNOPENED_KEY,), secret=secret, most=most)


async def _take_in(
    db: Database,
    redis: Redis,
    sources: tuple[str, ...],
    *,
    secret: str | None,
    most: int,
) -> int | None:
    """Move what the lists `sources` keep into `held_messages`; how many, or None when another
    worker holds the lock. One `LLEN` a list, in one trip, when there is nothing."""
    sealer = sealer_for(secret if secret is not None else get_settings().secret_key)
    async with redis.pipeline(transaction=False) as pipe:
        for source in sources:
            pipe.llen(source)
        lengths = [int(length) for length in await pipe.execute()]
    if not any(lengths):
        return 0
    lock = redis.lock(SPILL_LOCK, timeout=LEASE_SECONDS)
    if not await lock.acquire(blocking=False):
        return None
    moved = aside = 0
    try:
        for source, length in zip(sources, lengths, strict=True):
            # The set-aside list is gone through once (what still does not open goes back to
            # its end); the others until they are empty.
            left = length if source == UNOPENED_KEY else None
            taken, set_aside, kept_lock = await _move(
                db, redis, lock, sealer, source, most=most, left=left
            )
            moved, aside = moved + taken, aside + set_aside
            if not kept_lock:
                break
    finally:
        with contextlib.suppress(LockError, RedisError):
            await lock.release()
    if moved:
        log.warning("%d messages kept in Redis while the database was away are now held", moved)
    if aside and UNOPENED_KEY in sources:
        log.error(
            "%d messages kept in Redis while the database was away still do not open with this "
            "secret key: left in %s for a worker started with the key they were sealed under",
            aside,
            UNOPENED_KEY,
        )
    elif aside:
        HELD.labels("unknown", "unopened").inc(aside)
        log.error(
            "%d messages kept in Redis while the database was away were sealed under another "
            "secret key (RABTA_SECRET_KEY changed since): set aside in %s, not lost; a worker "
            "started with the key they were sealed under takes them in",
            aside,
            UNOPENED_KEY,
        )
    return moved


async def _move(
    db: Database,
    redis: Redis,
    lock: Lock,
    sealer: Sealer,
    source: str,
    *,
    most: int,
    left: int | None,
) -> tuple[int, int, bool]:
    """Move what the list `source` keeps into `held_messages`, a group at a time (at most `left`
    entries when given): how many were moved, how many set aside as not opening, and whether
    the lock is still this worker's."""
    moved = aside = 0
    while left is None or left > 0:
        size = most if left is None else min(most, left)
        raw = await redis.lrange(source, 0, size - 1)
        if not raw:
            break
        rows: list[dict[str, object]] = []
        unopened: list[str | bytes] = []
        for item in raw:
            plain = _opened(sealer, item)
            if plain is None:
                unopened.append(item)
            elif (row := _unspilled(plain)) is not None:
                rows.append(row)
        if rows:
            async with db.engine.begin() as connection:
                await connection.execute(_hold_statement(connection.dialect.name), rows)
        # Still this worker's to trim (its lease renewed)? A write that outlasted the lease
        # leaves the group to the worker that took the lock since, whose INSERT meets it.
        try:
            await lock.reacquire()
        except LockError:
            return moved, aside, False
        async with redis.pipeline(transaction=True) as pipe:
            if unopened:  # set aside with the group's removal: neither lost nor kept twice
                pipe.rpush(UNOPENED_KEY, *unopened)
            pipe.ltrim(source, len(raw), -1)
            await pipe.execute()
        moved, aside = moved + len(rows), aside + len(unopened)
        if left is not None:
            left -= len(raw)
    return moved, aside, True


def _opened(sealer: Sealer, item: str | bytes) -> str | None:
    """A kept entry's JSON: opened when sealed (None when it does not open), as it is when the
    release before sealing kept it in clear."""
    text = item.decode(errors="replace") if isinstance(item, bytes) else item
    if not text.startswith(SEALED_PREFIX):
        return text
    return sealer.unseal(text, where=SPILL_KEY)


def _unspilled(raw: str) -> dict[str, object] | None:
    try:
        row = dict(json.loads(raw))
        row["now"] = dt.datetime.fromisoformat(str(row["now"]))
        kept = {
            key: row[key] for key in ("channel", "external_id", "sender", "phone", "text", "now")
        }
        # Kept before the look-up's count (or the media mark) went with the message: counted
        # again, and read as text, as then.
        return {**kept, "counted": row.get("counted") is True, "media": row.get("media") is True}
    except (ValueError, KeyError, TypeError):
        log.error("a message kept in Redis could not be read (%d bytes); dropped", len(raw))
        return None


def backoff_seconds(attempts: int) -> float:
    """The wait before another try, after `attempts` tries (10 s, doubling, at most 10 min)."""
    return min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))


async def claim(
    db: Database,
    *,
    limit: int,
    lease_seconds: int = LEASE_SECONDS,
    now: dt.datetime | None = None,
) -> list[HeldMessage]:
    """Claim up to `limit` held messages, oldest first, for one worker to answer."""
    now = now or utcnow()
    due = and_(
        HeldMessage.attempts < MAX_ATTEMPTS,
        or_(HeldMessage.claimed_until.is_(None), HeldMessage.claimed_until < now),
    )
    pick = select(HeldMessage.id).where(due).order_by(HeldMessage.id).limit(limit)
    mark = {
        "claimed_until": now + dt.timedelta(seconds=lease_seconds),
        "attempts": HeldMessage.attempts + 1,
    }
    claimed = await claim_rows(db, HeldMessage, pick=pick, due=due, values=mark)
    claimed.sort(key=lambda message: message.id)
    return claimed


async def answer(runtime: Runtime, message: HeldMessage) -> bool:
    """Answer one claimed message: its reply into the outbox and the row deleted, together.
    False when it failed (it is tried again after a backoff, or given up)."""
    # Imported here: the conversation service reaches api.surge, which reaches this module.
    from api.conversations.service import receive

    inbound = Inbound(
        channel=message.channel,
        sender=message.sender,
        text=message.text,
        message_id=message.external_id,
        phone=message.phone,
        counted=message.counted,
        media=message.media,
    )
    # The claim on the words of the SMS this answer sends (None when it sends none), and
    # whether another held message's answer took the same words to this phone.
    sent: str | None = None
    repeated = False
    try:
        reply = await receive(runtime, inbound)
        # A reply the cache served went to this sender moments ago, live or for an earlier
        # message of theirs held with this one (`by_sender`), and one with the same words went,
        # or is going, to this phone for another held message (`SAME_REPLY_SECONDS`; another
        # worker's, answering it at this moment, included): another SMS would only cost.
        to = inbound.phone
        if reply.text and to and not reply.cached:
            key = _sent_key(runtime, inbound.channel, to, reply.text)
            repeated = not await _claim_words(runtime.redis, key, message.external_id)
            sent = None if repeated else key
        async with runtime.db.transaction() as session:
            if sent is not None and to:
                await enqueue(
                    session,
                    channel=inbound.channel,
                    to=to,
                    body=reply.text,
                    kind="reply",
                    language=reply.language,
                    priority=PRIORITY_REPLY,
                    dedup_key=f"held:{inbound.channel}:{inbound.message_id}",
                )
            await session.execute(delete(HeldMessage).where(HeldMessage.id == message.id))
    except Exception as exc:
        if sent is not None:
            await _release_words(runtime.redis, sent)
        await _failed(runtime.db, message, exc)
        return False
    already = reply.cached or repeated
    HELD.labels(message.channel, "already_answered" if already else "answered").inc()
    return True


def _sent_key(runtime: Runtime, channel: str, phone: str, text: str) -> str:
    return SENT_PREFIX + keyed_digest(runtime.settings.secret_key.encode(), channel, phone, text)


async def _claim_words(redis: Redis, key: str, message_id: str) -> bool:
    """Claim these words for this phone for the held message `message_id`, before its reply is
    enqueued: False when another held message's answer has them (sent, or being sent by
    another worker). A retry of this message finds its own claim (a try that died before its
    commit left it; the outbox's dedup key keeps a reply that did commit from going twice).
    Without Redis, True: a second SMS rather than none."""
    try:
        holder = await redis.set(key, message_id, ex=SAME_REPLY_SECONDS, nx=True, get=True)
    except RedisError:
        return True
    return holder is None or holder == message_id


async def _release_words(redis: Redis, key: str) -> None:
    """Give the words back when the reply's transaction failed: the next try, or another
    resend, sends them (otherwise a resend would send nothing until this one's retry)."""
    with contextlib.suppress(RedisError):
        await redis.delete(key)


async def _failed(db: Database, message: HeldMessage, exc: Exception) -> None:
    given_up = message.attempts >= MAX_ATTEMPTS
    HELD.labels(message.channel, "given_up" if given_up else "failed").inc()
    if given_up:
        log.error(
            "held %s message %d given up after %d tries (%s); kept in held_messages",
            message.channel,
            message.id,
            message.attempts,
            type(exc).__name__,
            exc_info=exc,
        )
        return
    wait = backoff_seconds(message.attempts)
    log.warning(
        "held %s message %d not answered (%s); again in %.0f s",
        message.channel,
        message.id,
        type(exc).__name__,
        wait,
    )
    with contextlib.suppress(Exception):  # the lease runs out by itself otherwise
        async with db.transaction() as session:
            await session.execute(
                update(HeldMessage)
                .where(HeldMessage.id == message.id)
                .values(claimed_until=utcnow() + dt.timedelta(seconds=wait))
            )


@dataclass(frozen=True)
class Backlog:
    """What is held, for an operator (`rabta held stats`)."""

    #: Never tried yet.
    waiting: int
    #: Tried and failed at least once, to be tried again (or being answered now).
    retrying: int
    #: Tried MAX_ATTEMPTS times: kept, no longer tried, until `rabta held retry`.
    given_up: int
    oldest: dt.datetime | None


async def backlog(db: Database) -> Backlog:
    """How many messages are held, in which state, and since when."""
    state = case(
        (HeldMessage.attempts >= MAX_ATTEMPTS, "given_up"),
        (HeldMessage.attempts > 0, "retrying"),
        else_="waiting",
    )
    async with db.sessions() as session:
        rows = (
            await session.execute(
                select(state, func.count(), func.min(HeldMessage.received_at)).group_by(state)
            )
        ).all()
    counts = {name: count for name, count, _ in rows}
    oldest = min((utc(first) for _, _, first in rows if first is not None), default=None)
    return Backlog(
        waiting=counts.get("waiting", 0),
        retrying=counts.get("retrying", 0),
        given_up=counts.get("given_up", 0),
        oldest=oldest,
    )


async def retry_given_up(db: Database) -> int:
    """Give the messages given up a fresh set of tries (once what failed them is mended);
    how many. A worker with room takes them within `POLL_SECONDS`."""
    async with db.transaction() as session:
        result = await session.execute(
            update(HeldMessage)
            .where(HeldMessage.attempts >= MAX_ATTEMPTS)
            .values(attempts=0, claimed_until=None)
            .returning(HeldMessage.id)
        )
        return len(result.all())


def by_sender(messages: Sequence[HeldMessage]) -> list[list[HeldMessage]]:
    """Claimed messages grouped by sender, each group oldest first. A sender's messages are
    answered one after another, as they would have been on arrival: their conversation moves
    from one to the next, and the reply cache serves their resends (one SMS between them);
    different senders' are answered at once."""
    groups: dict[tuple[str, str], list[HeldMessage]] = {}
    for message in messages:
        groups.setdefault((message.channel, message.sender), []).append(message)
    return list(groups.values())


class Drainer:
    """Answers held messages in the background of one API worker, when its gate has room."""

    def __init__(
        self,
        runtime: Runtime,
        gate: Gate | None,
        *,
        batch: int = BATCH,
        poll_seconds: float = POLL_SECONDS,
        busy_pause: float = BUSY_PAUSE_SECONDS,
    ) -> None:
        self.runtime = runtime
        self.gate = gate
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.busy_pause = busy_pause
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._next_unspill = float("-inf")
        #: Whether this worker has tried the kept messages set aside as not opening (once).
        self._tried_unopened = False

    def start(self) -> None:
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="rabta-held-messages")

    def wake(self) -> None:
        """A message was just held here: look for room to answer it."""
        self._wake.set()

    async def stop(self) -> None:
        """Finish the messages being answered and stop (the rest stay held)."""
        if self._task is None:
            return
        self._stop.set()
        self._wake.set()
        with contextlib.suppress(Exception):
            await self._task
        self._task = None

    def _take(self) -> int:
        """Slots taken for answering held messages: none while the live traffic needs them."""
        if self.gate is None:
            return self.batch
        spare = self.gate.max_in_flight // 2
        taken = 0
        while taken < self.batch and self.gate.try_take(spare=spare):
            taken += 1
        return taken

    async def drain(self) -> int | None:
        """One pass: answer up to a batch; how many were claimed, or None with no room."""
        slots = self._take()
        if not slots:
            return None
        try:
            messages = await claim(self.runtime.db, limit=slots)
            await asyncio.gather(*(self._answer_in_turn(group) for group in by_sender(messages)))
            return len(messages)
        finally:
            if self.gate is not None:
                for _ in range(slots):
                    self.gate.release()

    async def _answer_in_turn(self, messages: list[HeldMessage]) -> None:
        for message in messages:
            await answer(self.runtime, message)

    async def unspill(self) -> None:
        """Move what was kept in Redis while the database was away into `held_messages`, at
        most once per `poll_seconds` (one trip to Redis when there is nothing; a second on this
        worker's first pass, for what was set aside as not opening)."""
        now = time.monotonic()
        if now < self._next_unspill:
            return
        self._next_unspill = now + self.poll_seconds
        try:
            db, redis, secret = self.runtime.db, self.runtime.redis, self.runtime.holds.secret
            if not self._tried_unopened:
                # Once a worker, first (they are the older): a worker started with the secret
                # key the messages set aside were sealed under takes them in.
                taken = await take_in_unopened(db, redis, secret=secret)
                self._tried_unopened = taken is not None
            await unspill(db, redis, secret=secret)
        except RedisError as exc:
            log.warning("held messages: Redis unavailable (%s); again later", type(exc).__name__)
        except Exception as exc:
            if not is_database_unavailable(exc):
                raise
            log.warning("held messages kept in Redis: the database is still unavailable")

    async def _run(self) -> None:
        # Something may be held from before this worker started (or by a replica that stopped).
        pending = True
        while not self._stop.is_set():
            if not pending:
                await nap(self._wake, self.poll_seconds)
                pending = True
                continue
            self._wake.clear()
            try:
                await self.unspill()
                claimed = await self.drain()
            except Exception as exc:
                if is_database_unavailable(exc):
                    log.warning(
                        "held messages: database unavailable; again in %.0f s", self.poll_seconds
                    )
                else:
                    log.exception(
                        "answering held messages failed; again in %.0f s", self.poll_seconds
                    )
                pending = False
                continue
            if claimed is None:
                await nap(self._stop, self.busy_pause)
            elif claimed == 0:
                pending = False
