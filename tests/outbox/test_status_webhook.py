"""`POST /webhooks/twilio/status`: signed Twilio status callbacks update the outbox."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from api.outbox.senders import RetryableSendError, TwilioSender
from api.outbox.service import (
    LEASE_SECONDS,
    OptedOutBy,
    _finish_sent,
    claim_batch,
    deliver_due,
    enqueue,
    opt_back_in,
    suppressed_by,
)
from api.registry.models import Contact, OutboundMessage
from api.settings import get_settings
from tests.conftest import load_payload
from tests.outbox.conftest import TWILIO_SID, FakeTwilio, RecordingSender, serve

URL = "/webhooks/twilio/status"
PUBLIC = "http://127.0.0.1:8000"
TOKEN = "test-auth-token-0123456789abcdef"
SID = "SMf0e1d2c3b4a5968778695a4b3c2d1e0f"  # the payload's MessageSid


@pytest.fixture
def validator(settings, monkeypatch):
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("RABTA_EMBEDDED_WORKER", "false")
    get_settings.cache_clear()
    yield RequestValidator(TOKEN)
    get_settings.cache_clear()


@pytest.fixture
async def status_client(validator, db, redis):
    from api.chat import in_process_client
    from api.main import create_app

    async with in_process_client(create_app(get_settings()), "http://internal:9000") as http:
        yield http


async def grievance_update(db, *, channel: str = "sms", **state: Any) -> int:
    """A grievance's update to +923001234567 in the outbox, as far as `state` says it went:
    its id."""
    async with db.transaction() as session:
        message = OutboundMessage(
            channel=channel,
            to="+923001234567",
            body="Your grievance is resolved.",
            kind="grievance_status",
            **state,
        )
        session.add(message)
        await session.flush()
        return message.id


@pytest.fixture
async def sent(db) -> int:
    return await grievance_update(
        db, status="sent", provider_id=SID, sent_at=dt.datetime.now(dt.UTC)
    )


async def post(client, validator, form, *, signature: str | None = None):
    signature = validator.compute_signature(PUBLIC + URL, form) if signature is None else signature
    headers = {"X-Twilio-Signature": signature} if signature else {}
    return await client.post(URL, data=form, headers=headers)


async def stored(db, message_id: int) -> OutboundMessage:
    async with db.sessions() as session:
        message = await session.get(OutboundMessage, message_id)
        assert message is not None
        return message


async def test_signed_delivered_callback_updates_the_outbox(status_client, validator, db, sent):
    response = await post(status_client, validator, load_payload("twilio_status_callback.json"))
    assert response.status_code == 204
    message = await stored(db, sent)
    assert (message.status, message.provider_status) == ("delivered", "delivered")
    assert message.delivered_at is not None


async def test_late_sent_after_delivered_does_not_regress(status_client, validator, db, sent):
    form = load_payload("twilio_status_callback.json")
    assert (await post(status_client, validator, form)).status_code == 204
    late = {**form, "MessageStatus": "sent", "SmsStatus": "sent"}
    assert (await post(status_client, validator, late)).status_code == 204
    message = await stored(db, sent)
    assert (message.status, message.provider_status) == ("delivered", "delivered")


async def test_undelivered_callback_keeps_the_error_code(status_client, validator, db, sent):
    form = load_payload("twilio_status_callback.json")
    form.update(MessageStatus="undelivered", SmsStatus="undelivered", ErrorCode="30005")
    assert (await post(status_client, validator, form)).status_code == 204
    message = await stored(db, sent)
    assert (message.status, message.error) == ("undelivered", "twilio error 30005")


@pytest.mark.parametrize("status", ["failed", "undelivered"])
async def test_unsubscribed_error_in_a_callback_opts_the_contact_out(
    status_client, validator, db, sent, status
):
    """Twilio refuses a message to a number that texted STOP to the carrier (21610) when it is
    created, or, through a Messaging Service, only in the callback: the contact is opted out
    (for the carrier) either way, and the next update is suppressed instead of being refused
    again."""
    async with db.transaction() as session:
        session.add(Contact(channel="sms", address="+923001234567", phone="+923001234567"))
        session.add(Contact(channel="sms", address="+923451112233", phone="+923451112233"))
    form = load_payload("twilio_status_callback.json")
    form.update(MessageStatus=status, SmsStatus=status, ErrorCode="21610")
    assert (await post(status_client, validator, form)).status_code == 204
    message = await stored(db, sent)
    assert message.error == "twilio error 21610"
    async with db.sessions() as session:
        rows = await session.execute(
            select(Contact.address, Contact.opted_out, Contact.opted_out_by)
        )
        opted = {address: (out, by) for address, out, by in rows}
    assert opted == {"+923001234567": (True, "carrier"), "+923451112233": (False, None)}


async def test_the_carriers_opt_out_is_not_ended_by_an_unblock(status_client, validator, db, sent):
    """Only START ends the carrier's opt-out (21610): ending a block's opt-out, as unblocking
    the Telegram bot does, leaves it, and the console hears why the update was not sent."""
    async with db.transaction() as session:
        session.add(Contact(channel="sms", address="+923001234567", phone="+923001234567"))
    form = load_payload("twilio_status_callback.json")
    form.update(MessageStatus="failed", SmsStatus="failed", ErrorCode="21610")
    assert (await post(status_client, validator, form)).status_code == 204
    async with db.transaction() as session:
        await session.execute(opt_back_in("sms", "+923001234567", undoing=OptedOutBy.BLOCKED))
    async with db.transaction() as session:
        assert await session.scalar(select(Contact.opted_out)) is True
        update = await enqueue(
            session, channel="sms", to="+923001234567", body="Update", kind="grievance_status"
        )
        assert update is not None
        assert await suppressed_by(session, update) is OptedOutBy.CARRIER


@pytest.mark.parametrize("status", ["failed", "undelivered"])
async def test_a_whatsapp_block_fails_the_message_and_keeps_the_person_opted_in(
    status_client, validator, db, status
):
    """63014: she blocked the business on WhatsApp. WhatsApp never says when she unblocks it,
    so she is not opted out (that would keep every later update from her for good): this
    message fails with its code, and the next update is tried."""
    address = "+923001234567"
    async with db.transaction() as session:
        session.add(Contact(channel="whatsapp", address=address, phone=address))
    await grievance_update(
        db, channel="whatsapp", status="sent", provider_id=SID, sent_at=dt.datetime.now(dt.UTC)
    )
    form = load_payload("twilio_status_callback.json")
    form.update(
        MessageStatus=status,
        SmsStatus=status,
        ErrorCode="63014",
        To=f"whatsapp:{address}",
        From="whatsapp:+15005550006",
    )
    assert (await post(status_client, validator, form)).status_code == 204
    async with db.transaction() as session:
        message = await session.scalar(select(OutboundMessage))
        assert (message.status, message.error) == (status, "twilio error 63014")
        assert await session.scalar(select(Contact.opted_out)) is False
        update = await enqueue(
            session, channel="whatsapp", to=address, body="Update", kind="grievance_status"
        )
        assert update is not None
        assert await suppressed_by(session, update) is None


async def test_unreachable_handset_does_not_opt_the_contact_out(status_client, validator, db, sent):
    async with db.transaction() as session:
        session.add(Contact(channel="sms", address="+923001234567", phone="+923001234567"))
    form = load_payload("twilio_status_callback.json")
    form.update(MessageStatus="undelivered", SmsStatus="undelivered", ErrorCode="30003")
    assert (await post(status_client, validator, form)).status_code == 204
    async with db.sessions() as session:
        assert await session.scalar(select(Contact.opted_out)) is False


@pytest.mark.parametrize(
    "signature", ["", "AAAAforgedAAAAAAAAAAAAAAAAA="], ids=["missing", "forged"]
)
async def test_unsigned_or_forged_callback_is_403(status_client, validator, db, sent, signature):
    form = load_payload("twilio_status_callback.json")
    response = await post(status_client, validator, form, signature=signature)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert (await stored(db, sent)).status == "sent"


async def test_tampered_status_is_403(status_client, validator, db, sent):
    form = load_payload("twilio_status_callback.json")
    signature = validator.compute_signature(PUBLIC + URL, form)
    form["MessageStatus"] = "failed"
    response = await post(status_client, validator, form, signature=signature)
    assert response.status_code == 403


async def test_unknown_message_is_acknowledged(status_client, validator, db):
    form = load_payload("twilio_status_callback.json")
    form.update(MessageSid="SM" + "9" * 32, SmsSid="SM" + "9" * 32)
    assert (await post(status_client, validator, form)).status_code == 204


@pytest.mark.parametrize("missing", ["MessageSid", "MessageStatus"])
async def test_missing_fields_are_400(status_client, validator, db, missing):
    form = load_payload("twilio_status_callback.json")
    form.pop(missing)
    if missing == "MessageStatus":
        form.pop("SmsStatus")
    response = await post(status_client, validator, form)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


async def test_json_body_is_415(status_client, validator, db):
    response = await status_client.post(URL, json={"MessageSid": SID})
    assert response.status_code == 415


# -- callbacks that name their outbox row (`?outbox=<id>`) -----------------------------------


@pytest.fixture
async def sending(db) -> int:
    """A message a worker has handed to Twilio but whose MessageSid is not committed yet."""
    return await grievance_update(
        db,
        status="sending",
        attempts=1,
        claimed_by="worker-a",
        locked_until=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1),
    )


async def post_to(client, validator, url: str, form, *, signed_url: str | None = None):
    """POST `form` to `url` (path and query), signed the way Twilio signs over the full URL."""
    signature = validator.compute_signature(PUBLIC + (signed_url or url), form)
    return await client.post(url, data=form, headers={"X-Twilio-Signature": signature})


def callback(status: str, sid: str = SID, **extra: str) -> dict[str, str]:
    form = load_payload("twilio_status_callback.json")
    form.update(MessageSid=sid, SmsSid=sid, MessageStatus=status, SmsStatus=status, **extra)
    return form


async def test_callback_before_the_sid_is_committed_finds_its_row_and_the_worker_keeps_it(
    status_client, validator, db, settings
):
    """The whole race, for real: the worker's TwilioSender against a fake Twilio that calls the
    status webhook (signed by twilio's RequestValidator over `?outbox=<id>`) before it answers
    the create, i.e. before the worker can commit the MessageSid."""
    async with db.transaction() as session:
        other = await enqueue(session, channel="sms", to="+923451112233", body="b", kind="x")
        mine = await enqueue(session, channel="sms", to="+923001234567", body="a", kind="x")
        assert other is not None and mine is not None
        other_id, mine_id = other.id, mine.id
    seen: dict[str, tuple[str | None, str]] = {}

    async def call_back_first(form: dict[str, str], sid: str) -> None:
        url = form["StatusCallback"]
        assert url.startswith(PUBLIC + URL + "?outbox=")
        row_id = int(url.rpartition("=")[2])
        before = await stored(db, row_id)
        seen[form["To"]] = (before.provider_id, before.status)  # nothing committed yet
        status = "delivered" if row_id == mine_id else "undelivered"
        response = await post_to(
            status_client,
            validator,
            url.removeprefix(PUBLIC),
            callback(status, sid, ErrorCode="30003" if status == "undelivered" else ""),
        )
        assert response.status_code == 204

    fake = FakeTwilio(on_create=call_back_first)
    app = web.Application()
    app.router.add_post("/2010-04-01/Accounts/{account}/Messages.json", fake.create)
    configured = get_settings().model_copy(
        update={"twilio_account_sid": TWILIO_SID, "twilio_from": "+15005550006"}
    )
    async with serve(app) as base:
        sender = TwilioSender(configured, "sms", api_base_url=base)
        try:
            report = await deliver_due(db, {"sms": sender}, worker_id="worker-a", concurrency=1)
        finally:
            await sender.aclose()

    assert seen == {"+923001234567": (None, "sending"), "+923451112233": (None, "sending")}
    assert (report.sent, report.lost) == (2, 0)
    mine_row, other_row = await stored(db, mine_id), await stored(db, other_id)
    by_to = {r["form"]["To"]: r["form"]["StatusCallback"] for r in fake.requests}
    assert by_to["+923001234567"].endswith(f"?outbox={mine_id}")
    # The callback's status survived the worker's commit: delivered did not go back to sent.
    assert (mine_row.status, mine_row.provider_status) == ("delivered", "delivered")
    assert mine_row.provider_id and mine_row.provider_id.startswith("SM")
    assert mine_row.sent_at is not None and mine_row.delivered_at is not None
    assert mine_row.locked_until is None
    assert (other_row.status, other_row.error) == ("undelivered", "twilio error 30003")
    assert other_row.provider_id not in (None, mine_row.provider_id)


async def test_early_sent_callback_then_worker_commit_then_delivered(
    status_client, validator, db, sending
):
    url = f"{URL}?outbox={sending}"
    assert (await post_to(status_client, validator, url, callback("sent"))).status_code == 204
    early = await stored(db, sending)
    assert (early.status, early.provider_id, early.provider_status) == ("sent", SID, "sent")

    # The worker commits the same MessageSid: sent, and the callback's provider status stays.
    assert await _finish_sent(db, early, "worker-a", SID, dt.datetime.now(dt.UTC))
    committed = await stored(db, sending)
    assert (committed.status, committed.provider_status) == ("sent", "sent")
    assert committed.locked_until is None and committed.sent_at is not None

    # A later callback of the old kind (no ?outbox=) finds the row by its MessageSid.
    assert (await post(status_client, validator, callback("delivered"))).status_code == 204
    assert (await stored(db, sending)).status == "delivered"


@pytest.mark.parametrize("first", ["queued", "sent"])
async def test_a_send_twilio_called_back_about_is_not_sent_again_after_its_worker_died(
    status_client, validator, db, settings, first
):
    """The worker is killed after Twilio accepted the message and before it committed the
    MessageSid; Twilio's callback comes meanwhile. When the lease runs out the next worker must
    not send the message again: the callback proved it was sent."""
    async with db.transaction() as session:
        queued = await enqueue(session, channel="sms", to="+923001234567", body="a", kind="x")
        assert queued is not None
        message_id = queued.id
    t0 = dt.datetime.now(dt.UTC)
    # Worker A claims the message; Twilio accepts it; worker A dies: no outcome is committed.
    [claimed] = await claim_batch(db, worker_id="worker-a", limit=10, now=t0)
    assert claimed.id == message_id
    url = f"{URL}?outbox={message_id}"
    assert (await post_to(status_client, validator, url, callback(first))).status_code == 204
    later = t0 + dt.timedelta(seconds=LEASE_SECONDS + 1)
    sender = RecordingSender()
    report = await deliver_due(db, {"sms": sender}, worker_id="worker-b", now=later)
    assert sender.sent == [] and report.claimed == 0
    row = await stored(db, message_id)
    assert (row.status, row.provider_id, row.provider_status) == ("sent", SID, first)
    assert row.sent_at is not None
    assert (await post(status_client, validator, callback("delivered"))).status_code == 204
    assert (await stored(db, message_id)).status == "delivered"


async def test_a_send_whose_response_was_lost_is_not_retried_once_twilio_calls_back(
    status_client, validator, db
):
    """Twilio accepted the message but its answer never reached the worker (a timeout), so
    the message went back to `pending` for a retry. The callback proves it was sent."""
    async with db.transaction() as session:
        queued = await enqueue(session, channel="sms", to="+923001234567", body="a", kind="x")
        assert queued is not None
        message_id = queued.id
    t0 = dt.datetime.now(dt.UTC)
    timed_out = RecordingSender()
    timed_out.script.append(RetryableSendError("twilio unreachable: TimeoutError"))
    report = await deliver_due(db, {"sms": timed_out}, worker_id="worker-a", now=t0)
    assert report.retried == 1 and (await stored(db, message_id)).status == "pending"
    url = f"{URL}?outbox={message_id}"
    assert (await post_to(status_client, validator, url, callback("sent"))).status_code == 204
    sender = RecordingSender()
    report = await deliver_due(
        db, {"sms": sender}, worker_id="worker-a", now=t0 + dt.timedelta(hours=2)
    )
    assert sender.sent == [] and report.claimed == 0
    assert (await stored(db, message_id)).status == "sent"


async def test_altered_outbox_id_is_403(status_client, validator, db, sending):
    form = callback("delivered")
    response = await post_to(
        status_client,
        validator,
        f"{URL}?outbox={sending + 1}",
        form,
        signed_url=f"{URL}?outbox={sending}",
    )
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    # Signed without the query, posted with one: also not what Twilio signed.
    response = await post_to(
        status_client, validator, f"{URL}?outbox={sending}", form, signed_url=URL
    )
    assert response.status_code == 403
    untouched = await stored(db, sending)
    assert (untouched.status, untouched.provider_id) == ("sending", None)


@pytest.mark.parametrize(
    "query",
    [
        "outbox=abc",
        "outbox=",
        "outbox=-1",
        "outbox=%2B1",  # "+1": int() would take it, the id format does not
        "outbox=%EF%BC%91",  # a fullwidth digit one
        "outbox=1.0",
        "outbox=99999999999999999999999999",  # wider than a BIGINT
        "outbox=1&outbox=2",
        "outbox=%00",
    ],
)
async def test_malformed_outbox_id_falls_back_to_the_sid(status_client, validator, db, sent, query):
    response = await post_to(status_client, validator, f"{URL}?{query}", callback("delivered"))
    assert response.status_code == 204
    assert (await stored(db, sent)).status == "delivered"  # found by MessageSid


async def test_malformed_outbox_id_and_unknown_sid_is_acknowledged(status_client, validator, db):
    form = callback("delivered", "SM" + "9" * 32)
    response = await post_to(status_client, validator, f"{URL}?outbox=x1", form)
    assert response.status_code == 204


async def test_outbox_id_of_no_row_is_acknowledged(status_client, validator, db):
    form = callback("delivered", "SM" + "9" * 32)
    response = await post_to(status_client, validator, f"{URL}?outbox=123456789", form)
    assert response.status_code == 204


async def test_callback_for_an_earlier_copy_leaves_the_row_alone(
    status_client, validator, db, sent
):
    """The row was sent again (a lost response): it tracks the new MessageSid, not this one."""
    earlier = "SM" + "e" * 32
    response = await post_to(
        status_client, validator, f"{URL}?outbox={sent}", callback("failed", earlier)
    )
    assert response.status_code == 204
    row = await stored(db, sent)
    assert (row.status, row.provider_id, row.provider_status) == ("sent", SID, None)


async def test_outbox_id_and_a_committed_sid_agree(status_client, validator, db, sent):
    response = await post_to(
        status_client, validator, f"{URL}?outbox={sent}", callback("delivered")
    )
    assert response.status_code == 204
    assert (await stored(db, sent)).status == "delivered"
