"""The outbox: enqueue in the caller's transaction, claim with a lease, deliver, record status.

Delivery guarantees
-------------------
* A message is enqueued in the same transaction as its cause (a grievance update, an OTP), so
  either both exist or neither does; a `dedup_key` makes enqueueing the same event twice a no-op.
* Workers claim due rows with a lease (`status=sending`, `locked_until`, `claimed_by`). On
  PostgreSQL the claim is `SELECT … FOR UPDATE SKIP LOCKED`, so any number of workers take
  disjoint batches; on SQLite (one process) a single `UPDATE … RETURNING` does the same.
* Each outcome is committed as soon as it is known, fenced on `claimed_by` so a worker that
  lost its lease cannot overwrite another's result. A claim older than half its lease is renewed
  (again fenced) before the send, so a slow batch never lets a second worker take a message
  the first is about to send.
* At-least-once boundary: a worker killed after the provider accepted a message but before its
  commit leaves the row in `sending`; once the lease expires another worker sends it again.
  The same holds for a timeout after the provider accepted. Neither Twilio's Messages API nor
  Telegram's sendMessage takes an idempotency key, so this one duplicate cannot be ruled out;
  short send timeouts and committing per message keep the window to one in-flight message.
  Twilio's status callback (which names its row) closes the window when it comes first: it
  proves the send, so it marks a `sending` or `pending` row `sent`, and nobody sends it again.
* Delivery-status callbacks are never lost to a race with the worker: Twilio may call back
  before the worker has committed the MessageSid, so the callback URL names the row
  (`/webhooks/twilio/status?outbox=<id>`, signed by Twilio with the rest of the URL). The
  callback then records the MessageSid itself, and the worker's later commit adds the send time
  without moving the status back (`delivered` never returns to `sent`).
* Attempts are counted at claim time, so a message that crashes its worker every time still
  reaches `MAX_ATTEMPTS` and fails instead of looping forever.
* A verification code is kept only as a keyed hash (SPEC §2): the outbox holds its SMS in clear
  only until the SMS is done with (sent, or failed for good), then keeps it with the code
  masked, as the logs do.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, cast

from prometheus_client import Counter, Histogram
from sqlalchemy import Table, Update, and_, case, func, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.db import Database, claim_rows, dialect_of, insert_for, utc
from api.logs import mask_sensitive
from api.outbox.senders import (
    TELEGRAM_BLOCKED,
    PermanentSendError,
    RetryableSendError,
    Senders,
)
from api.registry.models import Contact, Grievance, OutboundMessage

log = logging.getLogger(__name__)

#: Priorities: lower goes first.
PRIORITY_OTP = 0
PRIORITY_REPLY = 1
PRIORITY_NOTIFICATION = 5
PRIORITY_BULK = 9

CHANNELS = frozenset({"sms", "whatsapp", "telegram"})

#: Sends per message before it is marked failed.
MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 10.0
BACKOFF_CAP_SECONDS = 3600.0
LEASE_SECONDS = 60
#: Free-form WhatsApp messages are allowed this long after the user's last message.
WHATSAPP_WINDOW = dt.timedelta(hours=24)
#: Twilio: "Attempt to send to unsubscribed recipient" (the user texted STOP to the carrier).
TWILIO_UNSUBSCRIBED = 21610
#: Twilio (WhatsApp): "Channel message blocked by user action", the person blocked the business.
#: Not an opt-out: WhatsApp never says when she unblocks it, so an opt-out would keep her
#: updates from her for good; each update is tried and fails alone (docs/deployment.md).
TWILIO_WHATSAPP_BLOCKED = 63014


class OptedOutBy(StrEnum):
    """Why a contact is opted out (`contacts.opted_out_by`); NULL on an opted-out one is STOP."""

    #: The person sent STOP; only START opts her back in.
    STOP = "stop"
    #: Twilio's 21610: the number texted STOP to the carrier.
    CARRIER = "carrier"
    #: The person blocked the Telegram bot; unblocking it opts her back in.
    BLOCKED = "blocked"

    @classmethod
    def of(cls, stored: str | None) -> OptedOutBy:
        """The reason stored on an opted-out contact (NULL, or one not known here: STOP)."""
        try:
            return cls(stored) if stored else cls.STOP
        except ValueError:
            return cls.STOP


MESSAGES = Counter(
    "rabta_outbox_messages_total",
    "Outbox delivery outcomes.",
    ["channel", "kind", "outcome"],
)
SEND_SECONDS = Histogram(
    "rabta_outbox_send_seconds",
    "Time the provider took to accept (or refuse) one message.",
    ["channel"],
)
STATUS_CALLBACKS = Counter(
    "rabta_outbox_status_callbacks_total",
    "Provider delivery-status callbacks, by status.",
    ["status"],
)

#: The ticket id of a complaint an agent filed at the caller's request (api/grievances/notify.py).
FILED_FOR_THEM = "grievance_filed"
#: STOP turns notifications off, not answers: codes, replies to the person's own messages and
#: the ticket id of a complaint she asked an agent to file go.
ALWAYS_SENT = frozenset({"otp", "reply", FILED_FOR_THEM})


#: The outbox table, for Core statements on the hot path.
OUTBOX = cast(Table, OutboundMessage.__table__)


def utcnow() -> dt.datetime:
    """Now, in UTC."""
    return dt.datetime.now(dt.UTC)


def _done_body(kind: str, body: str) -> dict[str, str]:
    """What a finished message's row keeps of its body: a code's SMS with the code masked."""
    return {"body": mask_sensitive(body)} if kind == "otp" else {}


def _address(channel: str, to: str) -> str:
    """The contact address of a recipient (WhatsApp rows are stored without `whatsapp:`)."""
    return to.removeprefix("whatsapp:") if channel == "whatsapp" else to


# -- enqueue ---------------------------------------------------------------------------------


async def enqueue(
    session: AsyncSession,
    *,
    channel: str,
    to: str,
    body: str,
    kind: str,
    language: str | None = None,
    priority: int = PRIORITY_NOTIFICATION,
    dedup_key: str | None = None,
    grievance_id: int | None = None,
    template: str | None = None,
    template_variables: Mapping[str, Any] | None = None,
) -> OutboundMessage | None:
    """Add a message to the outbox in the caller's transaction; None if `dedup_key` exists."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown outbound channel {channel!r}")
    if not 0 <= priority <= 9:
        raise ValueError("priority runs from 0 (OTP) to 9 (bulk)")
    now = utcnow()
    statement = (
        insert_for(dialect_of(session), OutboundMessage)
        .values(
            channel=channel,
            to=_address(channel, to),
            body=body,
            kind=kind,
            language=language,
            priority=priority,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            dedup_key=dedup_key,
            grievance_id=grievance_id,
            template=template,
            template_variables=(
                json.dumps(dict(template_variables), ensure_ascii=False)
                if template_variables is not None
                else None
            ),
        )
        .on_conflict_do_nothing(index_elements=["dedup_key"])
        .returning(OutboundMessage.id)
    )
    new_id = (await session.execute(statement)).scalar_one_or_none()
    if new_id is None:
        return None
    return await session.get(OutboundMessage, new_id)


# -- claim -----------------------------------------------------------------------------------


async def claim_batch(
    db: Database,
    *,
    worker_id: str,
    limit: int,
    lease_seconds: int = LEASE_SECONDS,
    now: dt.datetime | None = None,
) -> list[OutboundMessage]:
    """Claim up to `limit` due messages for `worker_id`, soonest priority first."""
    now = now or utcnow()
    due = and_(
        or_(
            OutboundMessage.status == "pending",
            # A worker died mid-send: its lease ran out, so the message is anyone's again.
            and_(OutboundMessage.status == "sending", OutboundMessage.locked_until < now),
        ),
        OutboundMessage.next_attempt_at <= now,
    )
    pick = (
        select(OutboundMessage.id)
        .where(due)
        .order_by(OutboundMessage.priority, OutboundMessage.id)
        .limit(limit)
    )
    claim = {
        "status": "sending",
        "locked_until": now + dt.timedelta(seconds=lease_seconds),
        "claimed_by": worker_id,
        "attempts": OutboundMessage.attempts + 1,
    }
    claimed = await claim_rows(db, OutboundMessage, pick=pick, due=due, values=claim)
    claimed.sort(key=lambda m: (m.priority, m.id))
    return claimed


# -- deliver ---------------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    """What one delivery pass did, message by message counted once."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    suppressed: int = 0
    #: Claimed but handed back unsent (the worker is stopping, or the provider asked us to wait).
    released: int = 0
    #: The claim was lost to another worker before this one could record the outcome.
    lost: int = 0
    outcomes: dict[int, str] = field(default_factory=dict, repr=False)

    def __iadd__(self, other: DeliveryReport) -> DeliveryReport:
        for f in fields(self):
            if f.name == "outcomes":
                continue
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    def record(self, message_id: int, outcome: str) -> None:
        """Count one message's outcome (sent, retried, failed, suppressed, released, lost)."""
        self.outcomes[message_id] = outcome
        setattr(self, outcome, getattr(self, outcome) + 1)


@dataclass
class _ContactFacts:
    opted_out: bool
    last_inbound_at: dt.datetime | None


def backoff_seconds(attempts: int) -> float:
    """10 s · 2^(attempts-1), capped at an hour, with jitter so retries do not stampede."""
    delay = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter, not security


async def _contacts(
    db: Database, messages: Sequence[OutboundMessage]
) -> dict[tuple[str, str], _ContactFacts]:
    keys = {(m.channel, _address(m.channel, m.to)) for m in messages}
    if not keys:
        return {}
    async with db.sessions() as session:
        rows = await session.execute(
            select(
                Contact.channel, Contact.address, Contact.opted_out, Contact.last_inbound_at
            ).where(tuple_(Contact.channel, Contact.address).in_(sorted(keys)))
        )
        return {
            (row.channel, row.address): _ContactFacts(
                bool(row.opted_out), utc(row.last_inbound_at) if row.last_inbound_at else None
            )
            for row in rows
        }


async def _quiet_grievances(session: AsyncSession, ids: set[int]) -> set[int]:
    """The grievances among `ids` whose owner sent STOP on the channel they filed from.

    An update goes by SMS when the grievance's own channel cannot carry it (WhatsApp outside its
    24-hour window): the SMS contact of that phone never said STOP, but the person did.
    """
    if not ids:
        return set()
    rows = await session.scalars(
        select(Grievance.id)
        .join(Contact, Contact.id == Grievance.contact_id)
        .where(Grievance.id.in_(sorted(ids)), Contact.opted_out.is_(True))
    )
    return set(rows)


async def _quiet_grievances_of(db: Database, messages: Sequence[OutboundMessage]) -> set[int]:
    """`_quiet_grievances` of the grievances a batch of messages is about."""
    ids = {m.grievance_id for m in messages if m.grievance_id is not None}
    if not ids:
        return set()
    async with db.sessions() as session:
        return await _quiet_grievances(session, ids)


async def will_be_suppressed(session: AsyncSession, message: OutboundMessage) -> bool:
    """Whether the worker will suppress `message` for an opt-out (its recipient's on that
    channel, or its grievance owner's on the channel she filed from), as `deliver_due` decides."""
    return await suppressed_by(session, message) is not None


async def suppressed_by(session: AsyncSession, message: OutboundMessage) -> OptedOutBy | None:
    """Why the worker will suppress `message` (see `will_be_suppressed`), or None if it sends
    it: the recipient's opt-out on that channel first, else the grievance owner's."""
    if message.kind in ALWAYS_SENT:
        return None
    reason = select(Contact.opted_out_by).where(Contact.opted_out.is_(True))
    recipient = await session.execute(
        reason.where(
            Contact.channel == message.channel,
            Contact.address == _address(message.channel, message.to),
        )
    )
    found = recipient.first()
    if found is None and message.grievance_id is not None:
        owner = await session.execute(
            reason.join(Grievance, Grievance.contact_id == Contact.id).where(
                Grievance.id == message.grievance_id
            )
        )
        found = owner.first()
    return None if found is None else OptedOutBy.of(found.opted_out_by)


async def _fenced_update(db: Database, message_id: int, worker_id: str, **values: Any) -> bool:
    """Update a claimed row only if this worker still holds the claim; True if it did.

    A Core connection, not an ORM session: this runs once per message and is the worker's main
    cost besides the provider call.
    """
    async with db.engine.begin() as connection:
        result = await connection.execute(
            update(OUTBOX)
            .where(
                OutboundMessage.id == message_id,
                OutboundMessage.claimed_by == worker_id,
                OutboundMessage.status == "sending",
            )
            .values(**values)
        )
        return bool(result.rowcount == 1)


async def _finish(db: Database, message: OutboundMessage, worker_id: str, **values: Any) -> bool:
    """Commit an outcome, only if this worker still holds the claim."""
    return await _fenced_update(db, message.id, worker_id, locked_until=None, **values)


async def _finish_sent(
    db: Database, message: OutboundMessage, worker_id: str, provider_id: str, now: dt.datetime
) -> bool:
    """Commit "the provider accepted it as `provider_id`", fenced like `_finish`.

    Twilio may call the status webhook before this commit: the callback finds the row by the
    outbox id in its URL, records `provider_id` and may already have moved the row on
    (`delivered`, `undelivered`, `failed`). Such a row is still this worker's, and only the
    send time is added: its status, provider status and error stay as the callback left them.
    """
    status, stored_id = OUTBOX.c.status, OUTBOX.c.provider_id
    still_sending = status == "sending"
    async with db.engine.begin() as connection:
        result = await connection.execute(
            update(OUTBOX)
            .where(
                OUTBOX.c.id == message.id,
                OUTBOX.c.claimed_by == worker_id,
                # Either nothing recorded this send yet, or its own callback already did.
                or_(still_sending, stored_id == provider_id),
            )
            .values(
                # Right-hand sides see the row as it was before this UPDATE.
                status=case((still_sending, "sent"), else_=status),
                provider_status=case(
                    (stored_id == provider_id, OUTBOX.c.provider_status), else_=None
                ),
                error=case((still_sending, None), else_=OUTBOX.c.error),
                provider_id=provider_id,
                sent_at=now,
                locked_until=None,
                **_done_body(message.kind, message.body),
            )
        )
        return bool(result.rowcount == 1)


async def _renew(
    db: Database, message: OutboundMessage, worker_id: str, until: dt.datetime
) -> bool:
    """Extend the claim before sending; False if another worker has taken the message."""
    return await _fenced_update(db, message.id, worker_id, locked_until=until)


def opt_out(channel: str, address: str, *, by: OptedOutBy) -> Update:
    """Opt one channel identity out of notifications, as STOP does on it, and say why: Twilio's
    21610 (the number told the carrier STOP), a Telegram user blocking the bot. Only that
    contact: the person's other channels keep what they chose. One already opted out keeps its
    reason: a block after a STOP must not make the STOP undoable by an unblock."""
    return (
        update(Contact)
        .where(
            Contact.channel == channel,
            Contact.address == _address(channel, address),
            Contact.opted_out.is_not(True),
        )
        .values(opted_out=True, opted_out_by=by)
        .execution_options(synchronize_session=False)
    )


def opt_back_in(channel: str, address: str, *, undoing: OptedOutBy) -> Update:
    """Opt one channel identity back in, if what opted it out was `undoing` and nothing else:
    unblocking the Telegram bot ends a block, never a STOP or the carrier's opt-out (only START
    ends those)."""
    return (
        update(Contact)
        .where(
            Contact.channel == channel,
            Contact.address == _address(channel, address),
            Contact.opted_out_by == undoing,
        )
        .values(opted_out=False, opted_out_by=None)
        .execution_options(synchronize_session=False)
    )


def _opt_out(message: OutboundMessage, by: OptedOutBy) -> Update:
    """Opt the message's recipient out, for `by`."""
    return opt_out(message.channel, message.to, by=by)


def _refused_for_good(message: OutboundMessage, exc: PermanentSendError) -> OptedOutBy | None:
    """Why the provider refused `message`, if it did because its recipient does not want
    Rabta's messages: Twilio's 21610 (STOP to the carrier), Telegram's Forbidden (the user
    blocked the bot). Anything else (WhatsApp's 63014 too) is about this message alone."""
    code = str(exc.code)
    if message.channel == "telegram":
        return OptedOutBy.BLOCKED if code == TELEGRAM_BLOCKED else None
    return OptedOutBy.CARRIER if code == str(TWILIO_UNSUBSCRIBED) else None


class _Batch:
    """One claimed batch on its way out; shared state of its concurrent recipient queues."""

    def __init__(
        self,
        db: Database,
        senders: Senders,
        *,
        worker_id: str,
        lease_seconds: int,
        max_attempts: int,
        now: dt.datetime | None,
        stop: asyncio.Event | None,
        contacts: dict[tuple[str, str], _ContactFacts],
        quiet_grievances: set[int] | None = None,
        code_ttl: dt.timedelta | None = None,
    ) -> None:
        self.db = db
        self.senders = senders
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.fixed_now = now
        self.stop = stop
        self.contacts = contacts
        self.quiet_grievances = quiet_grievances or set()
        self.code_ttl = code_ttl
        self.claimed_at = time.monotonic()
        #: channel → until when the provider asked us to hold off (HTTP 429).
        self.paused: dict[str, dt.datetime] = {}
        self.report = DeliveryReport()

    def now(self) -> dt.datetime:
        return self.fixed_now or utcnow()

    async def run_queue(self, messages: list[OutboundMessage]) -> None:
        """One recipient's messages, in order (a reply must not overtake an earlier one)."""
        for message in messages:
            try:
                await self.deliver(message)
            except Exception:
                # The outcome could not be committed (database gone?): the message stays
                # `sending` and is retried when its lease expires. Never abort the batch.
                log.exception("outbox message %s: outcome not recorded", message.id)
                self.report.record(message.id, "lost")

    async def finish(self, message: OutboundMessage, outcome: str, **values: Any) -> None:
        if values.get("status") != "pending":
            values |= _done_body(message.kind, message.body)
        self._record(message, outcome, await _finish(self.db, message, self.worker_id, **values))

    def _record(self, message: OutboundMessage, outcome: str, committed: bool) -> None:
        """Count an outcome that was committed, or a claim lost before it could be."""
        if committed:
            self.report.record(message.id, outcome)
            MESSAGES.labels(message.channel, message.kind, outcome).inc()
        else:
            log.warning("outbox message %s: claim lost before %s was recorded", message.id, outcome)
            self.report.record(message.id, "lost")

    async def release(self, message: OutboundMessage, until: dt.datetime | None) -> None:
        """Hand a message back unsent, without counting the attempt."""
        values: dict[str, Any] = {
            "status": "pending",
            "attempts": OutboundMessage.attempts - 1,
        }
        if until is not None:
            values["next_attempt_at"] = until
        await self.finish(message, "released", **values)

    async def deliver(self, message: OutboundMessage) -> None:
        if self.stop is not None and self.stop.is_set():
            await self.release(message, None)
            return
        paused = self.paused.get(message.channel)
        if paused is not None and paused > self.now():
            await self.release(message, paused)
            return
        if message.attempts > self.max_attempts:
            await self.finish(
                message,
                "failed",
                status="failed",
                error=f"gave up after {self.max_attempts} attempts",
            )
            return
        if (
            message.kind == "otp"
            and self.code_ttl is not None
            and self.now() - utc(message.created_at) > self.code_ttl
        ):
            # The code has expired: sent now it would open nothing, and the person would take
            # the refusal for a typing mistake. She asks for a new one instead.
            await self.finish(
                message,
                "failed",
                status="failed",
                error="the code expired before it could be sent",
            )
            return
        facts = self.contacts.get((message.channel, _address(message.channel, message.to)))
        opted_out = (facts is not None and facts.opted_out) or (
            message.grievance_id in self.quiet_grievances
        )
        if opted_out and message.kind not in ALWAYS_SENT:
            await self.finish(
                message, "suppressed", status="suppressed", error="the recipient opted out"
            )
            return
        use_template = False
        if message.channel == "whatsapp":
            last = facts.last_inbound_at if facts else None
            if last is None or self.now() - last > WHATSAPP_WINDOW:
                if not message.template:
                    await self.finish(
                        message,
                        "failed",
                        status="failed",
                        error=(
                            "outside the WhatsApp 24-hour window and no template "
                            "(Twilio would refuse it with error 63016)"
                        ),
                    )
                    return
                use_template = True
        sender = self.senders.get(message.channel)
        if sender is None:
            # A worker without this channel's credentials: keep the message for one that has.
            await self._retry(message, f"no sender configured for {message.channel}")
            return
        if time.monotonic() - self.claimed_at > self.lease_seconds / 2 and not await _renew(
            self.db, message, self.worker_id, self.now() + dt.timedelta(seconds=self.lease_seconds)
        ):
            log.warning("outbox message %s: claim lost before sending; skipped", message.id)
            self.report.record(message.id, "lost")
            return
        started = time.perf_counter()
        try:
            result = await sender.send(message, use_template=use_template)
        except RetryableSendError as exc:
            SEND_SECONDS.labels(message.channel).observe(time.perf_counter() - started)
            if exc.retry_after is not None:
                until = self.now() + dt.timedelta(seconds=exc.retry_after)
                self.paused[message.channel] = max(until, self.paused.get(message.channel, until))
                # The provider is pacing us, not refusing the message: not an attempt.
                await self.finish(
                    message,
                    "retried",
                    status="pending",
                    next_attempt_at=until,
                    attempts=OutboundMessage.attempts - 1,
                    error=mask_sensitive(exc.reason)[:500],
                )
                return
            await self._retry(message, exc.reason)
            return
        except PermanentSendError as exc:
            SEND_SECONDS.labels(message.channel).observe(time.perf_counter() - started)
            refused_by = _refused_for_good(message, exc)
            if refused_by is not None:
                async with self.db.transaction() as session:
                    await session.execute(_opt_out(message, refused_by))
                # The recipient's later messages in this batch are suppressed like the next ones.
                key = (message.channel, _address(message.channel, message.to))
                facts = self.contacts.get(key)
                self.contacts[key] = _ContactFacts(True, facts.last_inbound_at if facts else None)
            await self.finish(
                message, "failed", status="failed", error=mask_sensitive(exc.reason)[:500]
            )
            return
        except Exception as exc:
            # An unexpected failure in one send is treated as temporary: never lose the message.
            log.exception("outbox message %s: %s sender crashed", message.id, message.channel)
            reason = f"sender error: {type(exc).__name__}"
            if isinstance(exc, OSError) and exc.strerror:
                # What an operator can mend: "No space left on device", "Permission denied".
                reason += f": {exc.strerror}"
            await self._retry(message, reason)
            return
        SEND_SECONDS.labels(message.channel).observe(time.perf_counter() - started)
        committed = await _finish_sent(
            self.db, message, self.worker_id, result.provider_id, self.now()
        )
        self._record(message, "sent", committed)

    async def _retry(self, message: OutboundMessage, reason: str) -> None:
        """Back to pending after an exponential backoff, or failed after the last attempt."""
        reason = mask_sensitive(reason)[:500]
        if message.attempts >= self.max_attempts:
            await self.finish(
                message,
                "failed",
                status="failed",
                error=f"gave up after {message.attempts} attempts: {reason}",
            )
            return
        delay = backoff_seconds(message.attempts)
        await self.finish(
            message,
            "retried",
            status="pending",
            next_attempt_at=self.now() + dt.timedelta(seconds=delay),
            error=reason,
        )


async def deliver_due(
    db: Database,
    senders: Senders,
    *,
    worker_id: str,
    limit: int = 50,
    now: dt.datetime | None = None,
    lease_seconds: int = LEASE_SECONDS,
    concurrency: int = 8,
    max_attempts: int = MAX_ATTEMPTS,
    stop: asyncio.Event | None = None,
    code_ttl: dt.timedelta | None = None,
) -> DeliveryReport:
    """Claim a batch and deliver it: recipients in parallel, each recipient's messages in order.

    A verification code's SMS older than `code_ttl` (the code's life) fails instead of going."""
    claimed = await claim_batch(
        db, worker_id=worker_id, limit=limit, lease_seconds=lease_seconds, now=now
    )
    if not claimed:
        return DeliveryReport()
    batch = _Batch(
        db,
        senders,
        worker_id=worker_id,
        lease_seconds=lease_seconds,
        max_attempts=max_attempts,
        now=now,
        stop=stop,
        contacts=await _contacts(db, claimed),
        quiet_grievances=await _quiet_grievances_of(db, claimed),
        code_ttl=code_ttl,
    )
    batch.report.claimed = len(claimed)
    queues: dict[tuple[str, str], list[OutboundMessage]] = {}
    for message in claimed:  # already in (priority, id) order
        queues.setdefault((message.channel, message.to), []).append(message)
    gate = asyncio.Semaphore(max(1, concurrency))

    async def run(queue: list[OutboundMessage]) -> None:
        async with gate:
            await batch.run_queue(queue)

    results = await asyncio.gather(*(run(q) for q in queues.values()), return_exceptions=True)
    for problem in results:
        if isinstance(problem, BaseException):
            log.error("outbox batch task failed: %r", problem)
    return batch.report


# -- provider status callbacks ---------------------------------------------------------------

#: How far along a provider status is; a callback never moves a row to a lower rank.
_STATUS_RANK = {
    "accepted": 1,
    "scheduled": 1,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "failed": 4,
    "undelivered": 4,
    "canceled": 4,
    "delivered": 5,
    "read": 6,
}


async def record_status(
    session: AsyncSession,
    *,
    provider_id: str,
    status: str,
    error_code: str | None,
    now: dt.datetime | None = None,
    outbox_id: int | None = None,
) -> bool:
    """Apply a Twilio status callback to its outbox row; False if no row tracks `provider_id`.

    The row is the one whose `provider_id` is the callback's MessageSid. Callbacks name their
    row too (`outbox_id`, from the callback URL's `?outbox=`), because Twilio may call before
    the worker has committed the MessageSid: such a row, still without a provider id, takes the
    callback's, and the worker's later commit keeps whatever status the callback recorded. A row
    that already tracks another MessageSid was sent again after a lost response; the callback is
    about the earlier copy and changes nothing.
    """
    message = await session.scalar(
        select(OutboundMessage).where(OutboundMessage.provider_id == provider_id).with_for_update()
    )
    if message is None and outbox_id is not None:
        # On PostgreSQL (READ COMMITTED) the lock waits for a worker committing this very row
        # and then reads its committed provider id.
        named = await session.scalar(
            select(OutboundMessage).where(OutboundMessage.id == outbox_id).with_for_update()
        )
        if named is not None and named.provider_id is None:
            named.provider_id = provider_id
            message = named
        elif named is not None and named.provider_id == provider_id:
            message = named
        elif named is not None:
            log.info("outbox message %s: status for an earlier send ignored", named.id)
    if message is None:
        return False
    now = now or utcnow()
    if message.status in ("pending", "sending"):
        # Twilio has this message, whatever it says of it: its worker died before committing
        # the send, or lost the response and put it back for a retry. Either way it must not
        # be claimed and sent again once the lease or the backoff runs out.
        message.status = "sent"
        message.sent_at = message.sent_at or now
    if message.kind == "otp":
        message.body = mask_sensitive(message.body)
    status = status.strip().lower()
    STATUS_CALLBACKS.labels(status if status in _STATUS_RANK else "other").inc()
    rank = _STATUS_RANK.get(status)
    if rank is None:
        log.info("outbox message %s: ignoring provider status %r", message.id, status[:20])
        return True
    if rank <= _STATUS_RANK.get(message.provider_status or "", 0):
        return True  # late or repeated: Twilio does not promise callbacks arrive in order
    message.provider_status = status
    if status in ("delivered", "read"):
        message.status = "delivered"
        message.delivered_at = message.delivered_at or now
        message.error = None
    elif status == "undelivered":
        message.status = "undelivered"
        message.error = f"twilio error {error_code}" if error_code else "undelivered"
    elif status in ("failed", "canceled"):
        message.status = "failed"
        message.error = f"twilio error {error_code}" if error_code else status
    if status in ("failed", "undelivered") and error_code == str(TWILIO_UNSUBSCRIBED):
        # The recipient told the carrier STOP. A Messaging Service accepts the message and says
        # so only here: the contact is opted out as when Twilio refuses the send outright.
        await session.execute(_opt_out(message, OptedOutBy.CARRIER))
    return True


@dataclass(frozen=True, slots=True)
class ChannelBacklog:
    """What waits in the outbox for one channel (`/metrics`: `rabta_outbox_*`)."""

    #: Not yet sent: due, being sent, or to be tried again later.
    waiting: int
    #: Due and nobody sending it: pending past its time, or its sender's lease expired.
    due: int
    #: How long the most overdue of those has waited past its time (0 when none).
    oldest_due_seconds: float


async def backlog(db: Database) -> dict[str, ChannelBacklog]:
    """The outbox's backlog by channel, read in one statement. A worker that does not run, or
    cannot keep up, shows as `oldest_due_seconds` growing; one that runs keeps it near 0."""
    now = utcnow()
    m = OutboundMessage
    overdue_since = case(
        (and_(m.status == "pending", m.next_attempt_at <= now), m.next_attempt_at),
        (and_(m.status == "sending", m.locked_until < now), m.locked_until),
    )
    query = (
        select(
            m.channel,
            func.count(),
            func.count(overdue_since),
            func.min(overdue_since),
        )
        .where(m.status.in_(("pending", "sending")))
        .group_by(m.channel)
    )
    async with db.sessions() as session:
        rows = (await session.execute(query)).all()
    return {
        channel: ChannelBacklog(
            waiting=int(waiting),
            due=int(due),
            oldest_due_seconds=max(0.0, (now - utc(oldest)).total_seconds()) if oldest else 0.0,
        )
        for channel, waiting, due, oldest in rows
    }
