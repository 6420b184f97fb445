"""A verification code lives in the outbox only until its SMS is done with: SPEC §2 keeps a
code only as a keyed hash, and an outbox row is kept long after the code it carried."""

from __future__ import annotations

import datetime as dt

import pytest

from api.db import Database
from api.outbox.senders import PermanentSendError
from api.outbox.service import PRIORITY_OTP, deliver_due, enqueue, record_status
from tests.outbox.conftest import stored

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
PHONE = "+923001234567"
CODE = "482913"
BODY = f"BISP code: {CODE}. It shows your details to whoever enters it, for 5 minutes."


async def queue_code(db: Database, body: str = BODY) -> int:
    async with db.transaction() as session:
        message = await enqueue(
            session, channel="sms", to=PHONE, body=body, kind="otp", priority=PRIORITY_OTP
        )
        assert message is not None
        message.next_attempt_at = T0
        return message.id


async def test_a_sent_code_is_masked_in_the_outbox(db, sender, senders):
    message_id = await queue_code(db)
    await deliver_due(db, senders, worker_id="w1", now=T0)
    assert [s.body for s in sender.sent] == [BODY]  # the person gets the code
    row = await stored(db, message_id)
    assert row.status == "sent"
    assert CODE not in row.body and row.body.startswith("BISP code: ******.")


async def test_a_code_that_could_not_be_sent_is_masked_too(db, sender, senders):
    message_id = await queue_code(db)
    sender.script.append(PermanentSendError("twilio 400 error 21211", 21211))
    await deliver_due(db, senders, worker_id="w1", now=T0)
    row = await stored(db, message_id)
    assert row.status == "failed" and CODE not in row.body


async def test_a_code_waiting_for_a_retry_keeps_it(db, sender, senders):
    from api.outbox.senders import RetryableSendError

    message_id = await queue_code(db)
    sender.script.append(RetryableSendError("twilio 500 error 20500"))
    await deliver_due(db, senders, worker_id="w1", now=T0)
    row = await stored(db, message_id)
    assert row.status == "pending" and CODE in row.body  # the retry must send the real code


@pytest.mark.parametrize("status", ["sent", "delivered"])
async def test_a_status_callback_that_proves_the_send_masks_the_code(db, status):
    """The worker died after Twilio took the SMS: the callback marks the row sent, and the
    code in it is masked as the worker's own commit would have."""
    message_id = await queue_code(db)
    async with db.transaction() as session:
        known = await record_status(
            session,
            provider_id="SM" + "1" * 32,
            status=status,
            error_code=None,
            outbox_id=message_id,
        )
    assert known
    row = await stored(db, message_id)
    assert row.status in ("sent", "delivered") and CODE not in row.body


async def test_other_messages_keep_their_digits(db, sender, senders):
    async with db.transaction() as session:
        message = await enqueue(
            session, channel="sms", to=PHONE, body="Ticket 123456 noted.", kind="reply"
        )
        assert message is not None
        message.next_attempt_at = T0
    await deliver_due(db, senders, worker_id="w1", now=T0)
    assert (await stored(db, message.id)).body == "Ticket 123456 noted."
