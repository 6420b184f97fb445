"""Real provider clients against local fake API servers: Twilio (aiohttp) and Telegram (PTB)."""

from __future__ import annotations

import base64
import json

import pytest

from api.outbox.senders import (
    ConsoleSender,
    PermanentSendError,
    RetryableSendError,
    TelegramSender,
    TwilioSender,
    build_senders,
)
from api.registry.models import OutboundMessage
from tests.outbox.conftest import TELEGRAM_TOKEN, TWILIO_SID, TWILIO_TOKEN

PHONE = "+923001234567"


def twilio_settings(settings, **extra):
    return settings.model_copy(
        update={
            "twilio_account_sid": TWILIO_SID,
            "twilio_auth_token": TWILIO_TOKEN,
            "twilio_from": "+15005550006",
            "twilio_whatsapp_from": "whatsapp:+14155238886",
            "public_base_url": "https://rabta.example.org",
        }
        | extra
    )


def message(**fields) -> OutboundMessage:
    values = {
        "id": 7,
        "channel": "sms",
        "to": PHONE,
        "body": "Aap ki shikayat G-7K3M9Q hal ho gayi.",
        "kind": "grievance_status",
        "language": "ur_Latn",
    }
    return OutboundMessage(**(values | fields))


@pytest.fixture
async def twilio_sms(settings, fake_twilio):
    sender = TwilioSender(twilio_settings(settings), "sms", api_base_url=fake_twilio.url)
    yield sender
    await sender.aclose()


async def test_twilio_sms_request_is_what_twilio_expects(twilio_sms, fake_twilio):
    result = await twilio_sms.send(message())
    [request] = fake_twilio.requests
    assert request["path"] == f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    assert request["form"] == {
        "To": PHONE,
        "From": "+15005550006",
        "Body": "Aap ki shikayat G-7K3M9Q hal ho gayi.",
        # The row's id rides along: the callback may come before the MessageSid is committed.
        "StatusCallback": "https://rabta.example.org/webhooks/twilio/status?outbox=7",
    }
    scheme, _, credentials = request["authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(credentials).decode() == f"{TWILIO_SID}:{TWILIO_TOKEN}"
    assert result.provider_id.startswith("SM") and len(result.provider_id) == 34


async def test_twilio_whatsapp_uses_prefixes_and_content_templates(settings, fake_twilio):
    sender = TwilioSender(twilio_settings(settings), "whatsapp", api_base_url=fake_twilio.url)
    try:
        await sender.send(message(channel="whatsapp"))
        await sender.send(
            message(
                channel="whatsapp",
                template="HX" + "b" * 32,
                template_variables=json.dumps({"1": "G-7K3M9Q"}),
            ),
            use_template=True,
        )
    finally:
        await sender.aclose()
    free_form, templated = (r["form"] for r in fake_twilio.requests)
    assert free_form["StatusCallback"] == templated["StatusCallback"]
    assert (
        templated["StatusCallback"] == "https://rabta.example.org/webhooks/twilio/status?outbox=7"
    )
    assert free_form["To"] == f"whatsapp:{PHONE}"
    assert free_form["From"] == "whatsapp:+14155238886"
    assert "ContentSid" not in free_form and free_form["Body"]
    assert templated["ContentSid"] == "HX" + "b" * 32
    assert json.loads(templated["ContentVariables"]) == {"1": "G-7K3M9Q"}
    assert "Body" not in templated  # template text in Body is what error 63016 refuses


async def test_twilio_429_is_retryable_with_its_retry_after(twilio_sms, fake_twilio):
    fake_twilio.replies.append(
        (429, {"code": 20429, "message": "Too Many Requests", "status": 429}, {"Retry-After": "7"})
    )
    with pytest.raises(RetryableSendError) as caught:
        await twilio_sms.send(message())
    assert caught.value.retry_after == 7.0


async def test_twilio_429_without_retry_after_paces_instead_of_failing(db, settings, fake_twilio):
    """Twilio's 429 (error 20429) usually names no Retry-After: the request was not processed
    and is safe to retry. The worker holds the channel off as for a Retry-After, sending no more
    of the batch into the throttle, and the throttled messages keep their attempts: a long
    throttle never gives up a message."""
    from sqlalchemy import select

    from api.outbox.service import MAX_ATTEMPTS, deliver_due, enqueue

    async with db.transaction() as session:
        for n in range(20):
            await enqueue(
                session, channel="sms", to=f"+9230011{n:05d}", body=f"update {n}", kind="x"
            )
    throttled = {"code": 20429, "message": "Too Many Requests", "status": 429}
    sender = TwilioSender(twilio_settings(settings), "sms", api_base_url=fake_twilio.url)
    try:
        for _ in range(MAX_ATTEMPTS + 1):
            fake_twilio.replies.extend([(429, throttled, {})] * 20)
            report = await deliver_due(db, {"sms": sender}, worker_id="w1", concurrency=1)
            assert report.retried == 1 and report.released == 19
            async with db.transaction() as session:
                rows = list(await session.scalars(select(OutboundMessage)))
                assert {(m.status, m.attempts) for m in rows} == {("pending", 0)}
                for m in rows:
                    m.next_attempt_at = m.created_at  # the pause is over
            fake_twilio.replies.clear()
        assert len(fake_twilio.requests) == MAX_ATTEMPTS + 1
        report = await deliver_due(db, {"sms": sender}, worker_id="w1")
        assert report.sent == 20
    finally:
        await sender.aclose()


async def test_twilio_5xx_is_retryable_without_retry_after(twilio_sms, fake_twilio):
    fake_twilio.replies.append((503, {"code": 20503, "message": "down", "status": 503}, {}))
    with pytest.raises(RetryableSendError) as caught:
        await twilio_sms.send(message())
    assert caught.value.retry_after is None


async def test_twilio_invalid_number_is_permanent(twilio_sms, fake_twilio):
    fake_twilio.replies.append(
        (
            400,
            {
                "code": 21211,
                "message": f"The 'To' number {PHONE} is not a valid phone number.",
                "more_info": "https://www.twilio.com/docs/errors/21211",
                "status": 400,
            },
            {},
        )
    )
    with pytest.raises(PermanentSendError) as caught:
        await twilio_sms.send(message())
    assert caught.value.code == 21211
    assert PHONE not in caught.value.reason


async def test_twilio_unreachable_is_retryable(settings):
    sender = TwilioSender(twilio_settings(settings), "sms", api_base_url="http://127.0.0.1:9")
    try:
        with pytest.raises(RetryableSendError):
            await sender.send(message())
    finally:
        await sender.aclose()


async def test_twilio_sender_needs_credentials(settings):
    with pytest.raises(ValueError):
        TwilioSender(settings, "sms")


@pytest.fixture
async def telegram(settings, fake_telegram):
    configured = settings.model_copy(
        update={
            "telegram_bot_token": TELEGRAM_TOKEN,
            "telegram_api_base_url": f"{fake_telegram.url}/bot",
        }
    )
    sender = TelegramSender(configured)
    yield sender
    await sender.aclose()


async def test_telegram_send_message(telegram, fake_telegram):
    result = await telegram.send(message(channel="telegram", to="555001", body="سلام"))
    [request] = fake_telegram.requests
    assert int(request["chat_id"]) == 555001 and request["text"] == "سلام"
    assert result.provider_id == "tg-555001-101"


async def test_telegram_flood_control_is_retry_after(telegram, fake_telegram):
    fake_telegram.replies.append(
        (
            429,
            {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 3",
                "parameters": {"retry_after": 3},
            },
        )
    )
    with pytest.raises(RetryableSendError) as caught:
        await telegram.send(message(channel="telegram", to="555001"))
    assert caught.value.retry_after == 3.0


async def test_telegram_blocked_bot_is_permanent(telegram, fake_telegram):
    fake_telegram.replies.append(
        (
            403,
            {
                "ok": False,
                "error_code": 403,
                "description": "Forbidden: bot was blocked by the user",
            },
        )
    )
    with pytest.raises(PermanentSendError):
        await telegram.send(message(channel="telegram", to="555001"))


async def test_telegram_bad_chat_is_permanent(telegram, fake_telegram):
    fake_telegram.replies.append(
        (400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"})
    )
    with pytest.raises(PermanentSendError):
        await telegram.send(message(channel="telegram", to="555001"))
    with pytest.raises(PermanentSendError):
        await telegram.send(message(channel="telegram", to="not-a-chat"))


async def test_telegram_server_error_is_retryable(telegram, fake_telegram):
    fake_telegram.replies.append(
        (502, {"ok": False, "error_code": 502, "description": "Bad Gateway"})
    )
    with pytest.raises(RetryableSendError):
        await telegram.send(message(channel="telegram", to="555001"))


def test_build_senders_console_by_default(settings):
    senders = build_senders(settings)
    assert set(senders) == {"sms", "whatsapp", "telegram"}
    assert all(isinstance(s, ConsoleSender) for s in senders.values())


def test_build_senders_twilio_and_telegram(settings):
    configured = twilio_settings(settings, telegram_bot_token=TELEGRAM_TOKEN)
    senders = build_senders(configured)
    assert isinstance(senders["sms"], TwilioSender) and senders["sms"].channel == "sms"
    assert isinstance(senders["whatsapp"], TwilioSender)
    assert senders["whatsapp"].channel == "whatsapp"
    assert isinstance(senders["telegram"], TelegramSender)


def test_build_senders_console_mode_still_uses_a_real_telegram_bot(settings):
    senders = build_senders(settings.model_copy(update={"telegram_bot_token": TELEGRAM_TOKEN}))
    assert isinstance(senders["sms"], ConsoleSender)
    assert isinstance(senders["telegram"], TelegramSender)
