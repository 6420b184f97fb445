"""A verification code lives RABTA_OTP_TTL (5 minutes): its SMS held up past that (retries
backing off, Twilio throttling, a worker that was down, a backlog) would hand the person a code
that opens nothing. The worker fails it instead, saying why, and sends the live ones."""

from __future__ import annotations

import datetime as dt

from api.db import Database
from api.outbox.service import PRIORITY_OTP, deliver_due, enqueue
from api.outbox.worker import run_worker
from tests.outbox.conftest import stored

PHONE = "+923001234567"


async def queue_code(db: Database, *, age: dt.timedelta, kind: str = "otp") -> int:
    now = dt.datetime.now(dt.UTC)
    async with db.transaction() as session:
        message = await enqueue(
            session,
            channel="sms",
            to=PHONE,
            body="BISP code: 482913. It shows your details to whoever enters it, for 5 minutes.",
            kind=kind,
            priority=PRIORITY_OTP,
        )
        assert message is not None
        message.created_at = now - age
        message.next_attempt_at = now - dt.timedelta(seconds=1)
        return message.id


async def test_the_worker_does_not_send_a_code_older_than_its_life(settings, db, sender, senders):
    assert settings.otp_ttl_seconds == 300
    dead = await queue_code(db, age=dt.timedelta(minutes=6))
    live = await queue_code(db, age=dt.timedelta(minutes=1))
    report = await run_worker(settings, db=db, senders=senders, once=True, worker_id="w1")
    assert [s.id for s in sender.sent] == [live]
    assert (report.sent, report.failed) == (1, 1)
    row = await stored(db, dead)
    assert row.status == "failed" and "expired" in (row.error or "")
    assert "482913" not in row.body


async def test_an_old_notification_is_still_sent(db, sender, senders):
    old = await queue_code(db, age=dt.timedelta(hours=3), kind="grievance_update")
    report = await deliver_due(db, senders, worker_id="w1", code_ttl=dt.timedelta(minutes=5))
    assert report.sent == 1 and [s.id for s in sender.sent] == [old]


async def test_without_a_code_life_every_code_is_sent(db, sender, senders):
    """`deliver_due` called without `code_ttl` (tests, tools) sends what it claims."""
    await queue_code(db, age=dt.timedelta(hours=1))
    assert (await deliver_due(db, senders, worker_id="w1")).sent == 1
