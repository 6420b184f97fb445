"""`POST /webhooks/twilio/status`: signed Twilio status callbacks update the outbox."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from twilio.request_validator import RequestValidator

from api.outbox.routes import router
from api.registry.models import OutboundMessage
from api.settings import get_settings
from tests.conftest import load_payload

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
    from api.main import create_app

    application = create_app(get_settings())
    if not any(getattr(route, "path", None) == URL for route in application.routes):
        application.include_router(router)  # until create_app includes it
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://internal:9000"
        ) as http,
    ):
        yield http


@pytest.fixture
async def sent(db) -> int:
    async with db.transaction() as session:
        message = OutboundMessage(
            channel="sms",
            to="+923001234567",
            body="Your grievance is resolved.",
            kind="grievance_status",
            status="sent",
            provider_id=SID,
            sent_at=dt.datetime.now(dt.UTC),
        )
        session.add(message)
        await session.flush()
        return message.id


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
