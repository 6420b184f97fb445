"""The outbox service: enqueue, claim, deliver with retries, suppression, WhatsApp window."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
from sqlalchemy import func, select

from api.db import Database
from api.outbox.senders import (
    ConsoleSender,
    PermanentSendError,
    RetryableSendError,
    SendResult,
)
from api.outbox.service import (
    MAX_ATTEMPTS,
    PRIORITY_BULK,
    PRIORITY_NOTIFICATION,
    PRIORITY_OTP,
    PRIORITY_REPLY,
    OptedOutBy,
    claim_batch,
    deliver_due,
    enqueue,
    record_status,
    suppressed_by,
)
from api.registry.models import Contact, Grievance, OutboundMessage

#: In the past, so messages "due at T0" are also due by the real clock.
T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
PHONE = "+923001234567"
OTHER = "+923451112233"


def aware(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment


async def add(db: Database, n: int = 1, **fields) -> list[int]:
    """Enqueue `n` messages (committed), created due at T0; returns their ids."""
    values = {"channel": "sms", "to": PHONE, "body": "Your grievance G-7K3M9Q is resolved."}
    values |= {"kind": "grievance_status"} | fields
    ids = []
    async with db.transaction() as session:
        for _ in range(n):
            message = await enqueue(session, **values)
            assert message is not None
            message.next_attempt_at = T0
            ids.append(message.id)
    return ids


async def row(db: Database, message_id: int) -> OutboundMessage:
    async with db.sessions() as session:
        message = await session.get(OutboundMessage, message_id)
        assert message is not None
        return message


async def statuses(db: Database) -> dict[str, int]:
    async with db.sessions() as session:
        result = await session.execute(
            select(OutboundMessage.status, func.count()).group_by(OutboundMessage.status)
        )
        return dict(result.all())


async def add_contact(db: Database, **fields) -> None:
    async with db.transaction() as session:
        session.add(Contact(**({"channel": "sms", "address": PHONE, "phone": PHONE} | fields)))


# -- enqueue --------------------------------------------------------------------------------


async def test_enqueue_adds_a_pending_row_in_the_callers_transaction(db):
    async with db.transaction() as session:
        message = await enqueue(
            session,
            channel="whatsapp",
            to="whatsapp:+923001234567",
            body="hello",
            kind="grievance_status",
            language="ur",
            template="HX0123",
            template_variables={"1": "G-7K3M9Q", "2": "حل"},
        )
        assert message is not None and message.id
    stored = await row(db, message.id)
    assert stored.status == "pending"
    assert stored.attempts == 0
    assert stored.priority == PRIORITY_NOTIFICATION
    assert stored.to == PHONE  # stored as a contact address, the sender adds `whatsapp:`
    assert json.loads(stored.template_variables) == {"1": "G-7K3M9Q", "2": "حل"}


async def test_enqueue_never_commits_on_its_own(db):
    session = db.sessions()
    async with session:
        await session.begin()
        await enqueue(session, channel="sms", to=PHONE, body="x", kind="otp")
        await session.rollback()
    assert await statuses(db) == {}


async def test_same_dedup_key_twice_makes_one_message(db):
    async with db.transaction() as session:
        first = await enqueue(
            session, channel="sms", to=PHONE, body="a", kind="grievance_status", dedup_key="g:1:4"
        )
    async with db.transaction() as session:
        second = await enqueue(
            session, channel="sms", to=PHONE, body="b", kind="grievance_status", dedup_key="g:1:4"
        )
        third = await enqueue(
            session, channel="sms", to=PHONE, body="c", kind="grievance_status", dedup_key="g:1:5"
        )
    assert first is not None and second is None and third is not None
    assert await statuses(db) == {"pending": 2}


async def test_enqueue_refuses_unknown_channels_and_priorities(db):
    async with db.transaction() as session:
        with pytest.raises(ValueError):
            await enqueue(session, channel="fax", to=PHONE, body="x", kind="otp")
        with pytest.raises(ValueError):
            await enqueue(session, channel="sms", to=PHONE, body="x", kind="otp", priority=10)


# -- delivery -------------------------------------------------------------------------------


async def test_console_sender_writes_one_json_line_per_message(db, settings):
    ids = await add(db, 2, body="Aap ki shikayat G-7K3M9Q hal ho gayi.", language="ur_Latn")
    console = ConsoleSender(settings.console_outbox)
    report = await deliver_due(db, {"sms": console}, worker_id="w1", now=T0)
    assert (report.claimed, report.sent) == (2, 2)
    lines = settings.console_outbox.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["id"] for r in records] == ids
    first = records[0]
    assert first["channel"] == "sms" and first["to"] == PHONE
    assert first["body"] == "Aap ki shikayat G-7K3M9Q hal ho gayi."
    assert first["kind"] == "grievance_status" and first["language"] == "ur_Latn"
    assert (first["encoding"], first["segments"]) == ("GSM-7", 1)
    stored = await row(db, ids[0])
    assert stored.status == "sent"
    assert stored.provider_id == f"console-{ids[0]}"
    assert aware(stored.sent_at) == T0
    assert stored.locked_until is None


async def test_console_lines_never_interleave(db, settings):
    console = ConsoleSender(settings.console_outbox)
    long_urdu = "آپ کی شکایت " * 200
    # Two messages to each of 60 recipients, so the batch goes out in parallel.
    async with db.transaction() as session:
        for i in range(120):
            await enqueue(
                session, channel="sms", to=f"+92300{i % 60:07d}", body=long_urdu, kind="x"
            )
    report = await deliver_due(db, {"sms": console}, worker_id="w1", limit=200, concurrency=32)
    assert report.sent == 120
    lines = settings.console_outbox.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 120
    assert all(json.loads(line)["body"] == long_urdu for line in lines)


async def test_lower_priority_number_goes_first(db, sender, senders):
    bulk = await add(db, priority=PRIORITY_BULK, to="+923000000001")
    note = await add(db, priority=PRIORITY_NOTIFICATION, to="+923000000002")
    otp = await add(db, priority=PRIORITY_OTP, kind="otp", to="+923000000003")
    reply = await add(db, priority=PRIORITY_REPLY, to="+923000000004")
    first = await claim_batch(db, worker_id="w1", limit=1, now=T0)
    assert [m.id for m in first] == otp
    await deliver_due(db, senders, worker_id="w1", limit=10, now=T0, concurrency=1)
    assert [s.id for s in sender.sent] == reply + note + bulk


async def test_messages_to_one_recipient_keep_their_order(db, sender, senders):
    ids = await add(db, 5)
    sender.delay = 0.01
    await deliver_due(db, senders, worker_id="w1", now=T0, concurrency=8)
    assert [s.id for s in sender.sent] == ids


async def test_messages_not_yet_due_wait(db, sender, senders):
    [message_id] = await add(db)
    report = await deliver_due(db, senders, worker_id="w1", now=T0 - dt.timedelta(seconds=1))
    assert report.claimed == 0
    assert (await row(db, message_id)).status == "pending"


async def test_retryable_failures_back_off_exponentially_then_recover(db, sender, senders):
    [message_id] = await add(db)
    sender.script.extend([RetryableSendError("503 from provider"), RetryableSendError("reset")])

    report = await deliver_due(db, senders, worker_id="w1", now=T0)
    assert report.retried == 1
    stored = await row(db, message_id)
    assert stored.status == "pending" and stored.attempts == 1
    assert stored.error == "503 from provider"
    first_delay = (aware(stored.next_attempt_at) - T0).total_seconds()
    assert 5 <= first_delay <= 10

    # Not due yet: nothing happens.
    assert (await deliver_due(db, senders, worker_id="w1", now=T0)).claimed == 0

    t1 = T0 + dt.timedelta(seconds=first_delay)
    await deliver_due(db, senders, worker_id="w1", now=t1)
    stored = await row(db, message_id)
    assert stored.attempts == 2
    assert 10 <= (aware(stored.next_attempt_at) - t1).total_seconds() <= 20

    t2 = aware(stored.next_attempt_at)
    report = await deliver_due(db, senders, worker_id="w1", now=t2)
    assert report.sent == 1
    stored = await row(db, message_id)
    assert (stored.status, stored.attempts, stored.error) == ("sent", 3, None)
    assert [s.id for s in sender.sent] == [message_id]


async def test_gives_up_after_the_last_attempt(db, sender, senders):
    [message_id] = await add(db)
    sender.script.extend([RetryableSendError("down")] * MAX_ATTEMPTS)
    now = T0
    for _ in range(MAX_ATTEMPTS):
        await deliver_due(db, senders, worker_id="w1", now=now)
        now += dt.timedelta(hours=2)
    stored = await row(db, message_id)
    assert stored.status == "failed"
    assert stored.attempts == MAX_ATTEMPTS
    assert stored.error.startswith(f"gave up after {MAX_ATTEMPTS} attempts")
    assert sender.calls == MAX_ATTEMPTS


async def test_retry_after_is_honoured_exactly_and_pauses_the_channel(db, sender, senders):
    ids = await add(db, 3, to=PHONE)
    other = await add(db, 1, to=OTHER)
    sender.script.append(RetryableSendError("429 Too Many Requests", retry_after=3))
    report = await deliver_due(db, senders, worker_id="w1", now=T0, concurrency=1)
    assert report.retried == 1 and report.released == 3 and report.sent == 0
    for message_id in ids + other:
        stored = await row(db, message_id)
        assert stored.status == "pending"
        assert aware(stored.next_attempt_at) == T0 + dt.timedelta(seconds=3)
        # Being paced by the provider is not a failed attempt.
        assert stored.attempts == 0
    report = await deliver_due(db, senders, worker_id="w1", now=T0 + dt.timedelta(seconds=3))
    assert report.sent == 4


async def test_permanent_failure_fails_the_message_only(db, sender, senders):
    bad, good = await add(db, 1, to="+920000"), await add(db, 1, to=OTHER)
    sender.script.append(PermanentSendError("twilio 400 error 21211", 21211))
    report = await deliver_due(db, senders, worker_id="w1", now=T0, concurrency=1)
    assert (report.failed, report.sent) == (1, 1)
    stored = await row(db, bad[0])
    assert stored.status == "failed" and "21211" in stored.error
    assert (await row(db, good[0])).status == "sent"


async def test_unsubscribed_recipient_is_marked_opted_out(db, sender, senders):
    await add_contact(db)
    await add(db)
    sender.script.append(PermanentSendError("twilio 400 error 21610", 21610))
    await deliver_due(db, senders, worker_id="w1", now=T0)
    async with db.sessions() as session:
        contact = await session.scalar(select(Contact).where(Contact.address == PHONE))
        assert (contact.opted_out, contact.opted_out_by) == (True, "carrier")


@pytest.mark.parametrize(
    ("stored", "reason"),
    [
        (None, OptedOutBy.STOP),  # every opt-out recorded before the reason was
        ("stop", OptedOutBy.STOP),
        ("carrier", OptedOutBy.CARRIER),
        ("blocked", OptedOutBy.BLOCKED),
    ],
)
async def test_a_suppressed_update_says_why(db, stored, reason):
    """What the console tells an agent about a note that will not go: the recipient's reason,
    or the grievance owner's on the channel she filed from."""
    await add_contact(db, opted_out=True, opted_out_by=stored)
    async with db.transaction() as session:
        owner = await session.scalar(select(Contact.id))
        grievance = Grievance(
            ticket_id="GRV2K7QX",
            cnic="3520112345671",
            category="other",
            description="",
            channel="sms",
            contact_id=owner,
            due_at=T0,
        )
        session.add(grievance)
        await session.flush()
        by_sms = await enqueue(session, channel="sms", to=PHONE, body="x", kind="grievance_status")
        by_telegram = await enqueue(
            session,
            channel="telegram",
            to="5012345678",
            body="x",
            kind="grievance_status",
            grievance_id=grievance.id,
        )
        otp = await enqueue(session, channel="sms", to=PHONE, body="Code 482913", kind="otp")
        assert by_sms is not None and by_telegram is not None and otp is not None
        assert await suppressed_by(session, by_sms) is reason
        assert await suppressed_by(session, by_telegram) is reason
        assert await suppressed_by(session, otp) is None


async def test_a_crashing_sender_does_not_abort_the_batch(db, sender, senders):
    ids = await add(db, 1, to=PHONE) + await add(db, 1, to=OTHER)
    sender.script.append(ZeroDivisionError("bug"))
    report = await deliver_due(db, senders, worker_id="w1", now=T0, concurrency=1)
    assert (report.retried, report.sent) == (1, 1)
    assert (await row(db, ids[0])).status == "pending"
    assert (await row(db, ids[0])).error == "sender error: ZeroDivisionError"


async def test_a_channel_without_sender_is_kept_for_later(db, sender):
    [message_id] = await add(db, channel="telegram", to="555001")
    report = await deliver_due(db, {"sms": sender}, worker_id="w1", now=T0)
    assert report.retried == 1
    stored = await row(db, message_id)
    assert stored.status == "pending" and "no sender" in stored.error


async def test_opted_out_contacts_get_no_notifications_but_still_get_otps(db, sender, senders):
    await add_contact(db, opted_out=True)
    [note] = await add(db, kind="grievance_status")
    [otp] = await add(db, kind="otp", priority=PRIORITY_OTP, body="Code 482913")
    report = await deliver_due(db, senders, worker_id="w1", now=T0)
    assert (report.suppressed, report.sent) == (1, 1)
    assert (await row(db, note)).status == "suppressed"
    assert (await row(db, otp)).status == "sent"
    assert [s.id for s in sender.sent] == [otp]


async def test_opt_out_is_per_channel(db, sender, senders):
    await add_contact(db, opted_out=True)  # opted out on SMS only
    [telegram] = await add(db, channel="telegram", to=PHONE)
    await deliver_due(db, senders, worker_id="w1", now=T0)
    assert (await row(db, telegram)).status == "sent"


# -- WhatsApp 24-hour window ----------------------------------------------------------------


async def test_whatsapp_outside_the_window_without_template_fails_clearly(db, sender, senders):
    await add_contact(db, channel="whatsapp", last_inbound_at=T0 - dt.timedelta(hours=25))
    [message_id] = await add(db, channel="whatsapp")
    report = await deliver_due(db, senders, worker_id="w1", now=T0)
    assert report.failed == 1 and sender.calls == 0
    stored = await row(db, message_id)
    assert stored.status == "failed"
    assert "24-hour window" in stored.error and "63016" in stored.error


async def test_whatsapp_to_an_unknown_contact_needs_a_template(db, sender, senders):
    [message_id] = await add(db, channel="whatsapp")
    await deliver_due(db, senders, worker_id="w1", now=T0)
    assert (await row(db, message_id)).status == "failed"


async def test_whatsapp_outside_the_window_with_template_is_sent_as_template(db, sender, senders):
    await add_contact(db, channel="whatsapp", last_inbound_at=T0 - dt.timedelta(days=3))
    await add(
        db, channel="whatsapp", template="HX" + "a" * 32, template_variables={"1": "G-7K3M9Q"}
    )
    report = await deliver_due(db, senders, worker_id="w1", now=T0)
    assert report.sent == 1
    [sent] = sender.sent
    assert sent.use_template and sent.template == "HX" + "a" * 32


async def test_whatsapp_inside_the_window_is_sent_free_form(db, sender, senders):
    await add_contact(db, channel="whatsapp", last_inbound_at=T0 - dt.timedelta(hours=23))
    await add(db, channel="whatsapp", template="HX" + "a" * 32)
    await deliver_due(db, senders, worker_id="w1", now=T0)
    [sent] = sender.sent
    assert not sent.use_template  # free-form replies in the window cost nothing extra


# -- crashes and concurrency ----------------------------------------------------------------


async def test_a_worker_killed_mid_batch_loses_nothing(db, sender, senders):
    ids = await add(db, 20)
    # Worker A claims the batch and dies before sending anything.
    claimed = await claim_batch(db, worker_id="A", limit=50, lease_seconds=60, now=T0)
    assert [m.id for m in claimed] == ids
    # While A's lease runs, nobody else may touch them.
    report = await deliver_due(db, senders, worker_id="B", now=T0 + dt.timedelta(seconds=59))
    assert report.claimed == 0
    # After the lease, worker B delivers every one of them, once.
    report = await deliver_due(db, senders, worker_id="B", now=T0 + dt.timedelta(seconds=61))
    assert report.sent == 20
    assert sorted(s.id for s in sender.sent) == ids
    assert await statuses(db) == {"sent": 20}
    stored = await row(db, ids[0])
    assert stored.claimed_by == "B" and stored.attempts == 2


async def test_a_worker_that_lost_its_lease_cannot_overwrite_the_outcome(db, sender, senders):
    from api.outbox.service import _finish

    [message_id] = await add(db)
    [stale] = await claim_batch(db, worker_id="A", limit=1, now=T0)
    await deliver_due(db, senders, worker_id="B", now=T0 + dt.timedelta(minutes=5))
    assert not await _finish(db, stale, "A", status="failed", error="late")
    assert (await row(db, message_id)).status == "sent"


async def test_a_slow_batch_renews_its_claim_before_each_send(db, sender, senders):
    ids = await add(db, 3)
    # A lease of 1 s with sends of 0.6 s: the later sends must renew the claim.
    sender.delay = 0.6
    report = await deliver_due(db, senders, worker_id="A", lease_seconds=1, concurrency=1)
    assert report.sent == 3 and report.lost == 0
    assert [s.id for s in sender.sent] == ids


async def test_stopping_hands_unsent_messages_back(db, sender, senders):
    ids = await add(db, 5)
    stop = asyncio.Event()

    async def stop_after_first(message):
        stop.set()

    sender.hook = stop_after_first
    report = await deliver_due(db, senders, worker_id="A", now=T0, stop=stop)
    assert (report.sent, report.released) == (1, 4)
    for message_id in ids[1:]:
        stored = await row(db, message_id)
        assert (stored.status, stored.attempts, stored.locked_until) == ("pending", 0, None)


async def test_two_workers_never_send_one_message_twice(db, settings):
    """Two workers with their own pools: SKIP LOCKED on PostgreSQL, and on SQLite the claim is
    one UPDATE … RETURNING under the database write lock."""
    from tests.outbox.conftest import RecordingSender

    total = 500
    async with db.transaction() as session:
        for i in range(total):
            await enqueue(session, channel="sms", to=f"+92300{i % 97:07d}", body=f"m{i}", kind="x")
    counting = RecordingSender(delay=0.001)
    databases = [Database.from_settings(settings) for _ in range(2)]

    async def loop(database: Database, name: str) -> int:
        done = 0
        while True:
            report = await deliver_due(
                database, {"sms": counting}, worker_id=name, limit=25, concurrency=4
            )
            if report.claimed == 0:
                return done
            done += report.sent

    try:
        done = await asyncio.gather(*(loop(d, f"w{i}") for i, d in enumerate(databases)))
    finally:
        for database in databases:
            await database.dispose()
    ids = [s.id for s in counting.sent]
    assert len(ids) == total and len(set(ids)) == total
    assert sum(done) == total and all(d > 0 for d in done)  # both workers took a share
    assert await statuses(db) == {"sent": total}


# -- status callbacks -----------------------------------------------------------------------


async def sent_message(db: Database, provider_id: str = "SM" + "1" * 32) -> int:
    [message_id] = await add(db)
    async with db.transaction() as session:
        message = await session.get(OutboundMessage, message_id)
        message.status, message.provider_id, message.sent_at = "sent", provider_id, T0
    return message_id


async def test_delivered_callback_sets_delivered_at(db):
    message_id = await sent_message(db)
    async with db.transaction() as session:
        assert await record_status(
            session, provider_id="SM" + "1" * 32, status="delivered", error_code=None, now=T0
        )
    stored = await row(db, message_id)
    assert (stored.status, stored.provider_status) == ("delivered", "delivered")
    assert aware(stored.delivered_at) == T0


async def test_late_callbacks_never_move_a_message_backwards(db):
    message_id = await sent_message(db)
    for status in ("delivered", "sent", "queued", "undelivered"):
        async with db.transaction() as session:
            await record_status(
                session, provider_id="SM" + "1" * 32, status=status, error_code="30003"
            )
    stored = await row(db, message_id)
    assert (stored.status, stored.provider_status, stored.error) == (
        "delivered",
        "delivered",
        None,
    )
    async with db.transaction() as session:
        await record_status(session, provider_id="SM" + "1" * 32, status="read", error_code=None)
    assert (await row(db, message_id)).provider_status == "read"


async def test_undelivered_callback_records_the_error(db):
    message_id = await sent_message(db)
    async with db.transaction() as session:
        await record_status(
            session, provider_id="SM" + "1" * 32, status="undelivered", error_code="30003"
        )
    stored = await row(db, message_id)
    assert stored.status == "undelivered" and stored.error == "twilio error 30003"


async def test_unknown_provider_id_is_reported(db):
    async with db.transaction() as session:
        assert not await record_status(
            session, provider_id="SMnope", status="delivered", error_code=None
        )


class CallingBackSender:
    """Twilio as seen by the worker when a status callback beats the worker's commit: the
    callback (found by its outbox id) is applied while `send` is still in flight."""

    channel = "sms"

    def __init__(self, db: Database, status: str, *, then: BaseException | None = None) -> None:
        self.db, self.status, self.then = db, status, then
        self.provider_ids: list[str] = []

    async def send(self, message: OutboundMessage, *, use_template: bool = False) -> SendResult:
        provider_id = f"SM{len(self.provider_ids):032d}"
        self.provider_ids.append(provider_id)
        async with self.db.transaction() as session:
            assert await record_status(
                session,
                provider_id=provider_id,
                status=self.status,
                error_code=None,
                outbox_id=message.id,
            )
        if self.then is not None:
            raise self.then
        return SendResult(provider_id=provider_id)


async def test_early_sent_callback_keeps_its_provider_status_through_the_commit(db):
    [message_id] = await add(db)
    sender = CallingBackSender(db, "sent")
    report = await deliver_due(db, {"sms": sender}, worker_id="w", now=T0)
    assert (report.sent, report.lost) == (1, 0)
    stored = await row(db, message_id)
    assert (stored.status, stored.provider_status) == ("sent", "sent")
    assert stored.provider_id == sender.provider_ids[0]


async def test_early_delivered_callback_survives_the_commit(db):
    [message_id] = await add(db)
    sender = CallingBackSender(db, "delivered")
    report = await deliver_due(db, {"sms": sender}, worker_id="w", now=T0)
    assert (report.sent, report.lost) == (1, 0)
    stored = await row(db, message_id)
    assert (stored.status, stored.provider_status) == ("delivered", "delivered")
    assert aware(stored.sent_at) == T0 and stored.delivered_at is not None
    assert stored.locked_until is None


async def test_a_delivered_callback_before_a_lost_response_is_not_sent_again(db):
    """Twilio accepted and delivered, but its answer timed out: the row says delivered (from the
    callback) and no worker sends it again."""
    [message_id] = await add(db)
    sender = CallingBackSender(db, "delivered", then=RetryableSendError("twilio unreachable"))
    await deliver_due(db, {"sms": sender}, worker_id="w", now=T0)
    assert (await row(db, message_id)).status == "delivered"
    later = T0 + dt.timedelta(hours=2)
    assert (await deliver_due(db, {"sms": sender}, worker_id="w", now=later)).claimed == 0
    assert len(sender.provider_ids) == 1


async def test_a_callback_for_an_earlier_copy_changes_nothing(db):
    message_id = await sent_message(db, "SM" + "2" * 32)
    async with db.transaction() as session:
        assert not await record_status(
            session,
            provider_id="SM" + "1" * 32,
            status="failed",
            error_code="30008",
            outbox_id=message_id,
        )
    stored = await row(db, message_id)
    assert (stored.status, stored.provider_id, stored.error) == ("sent", "SM" + "2" * 32, None)
