"""Forged and missing signatures on every webhook, in one matrix, with no side effect allowed.

* Twilio messaging and status callbacks: `X-Twilio-Signature` (HMAC-SHA1 of the public URL and
  the sorted form under the auth token), checked with twilio's RequestValidator.
* Telegram: `X-Telegram-Bot-Api-Secret-Token` equal to the configured secret.
* USSD (Africa's Talking convention): no signature exists. The app cannot tell the gateway from
  anyone else; the deployment must allow only the gateway's addresses to reach `/webhooks/ussd`
  (docs/security.md). The last test here makes that residual risk visible.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from api.registry.models import InboundMessage, OutboundMessage
from api.settings import Settings, get_settings
from tests.conftest import ELIGIBLE, ELIGIBLE_PHONE, load_payload, sms_form
from tests.security.figures import figure
from tests.telegram.conftest import (  # noqa: F401 - fixtures
    SECRET,
    TelegramChat,
    fake_api,
    payload,
    post_update,
    telegram_settings,
    tg_app,
    tg_client,
)

TOKEN = "security-test-auth-token-0123456789"
PUBLIC = "https://rabta.example.org"
MESSAGING = "/webhooks/twilio/messaging"
STATUS = "/webhooks/twilio/status"

#: (name, how the attacker changes a correctly signed request) → the request must be refused.
Forgery = Callable[[str, dict[str, str], str], tuple[str, dict[str, str], str | None]]
FORGERIES: dict[str, Forgery] = {
    "missing": lambda url, form, sig: (url, form, None),
    "empty": lambda url, form, sig: (url, form, ""),
    "garbage": lambda url, form, sig: (url, form, "not-a-signature"),
    "another key": lambda url, form, sig: (
        url,
        form,
        RequestValidator("attacker-token").compute_signature(PUBLIC + url, form),
    ),
    "one byte off": lambda url, form, sig: (url, form, ("B" if sig[0] != "B" else "C") + sig[1:]),
    "field changed": lambda url, form, sig: (url, {**form, "From": "+923451112233"}, sig),
    "field added": lambda url, form, sig: (url, {**form, "Extra": "1"}, sig),
    "field removed": lambda url, form, sig: (
        url,
        {k: v for k, v in form.items() if k != "To"},
        sig,
    ),
    "signed for the other webhook": lambda url, form, sig: (
        url,
        form,
        RequestValidator(TOKEN).compute_signature(
            PUBLIC + (STATUS if url == MESSAGING else MESSAGING), form
        ),
    ),
    "signed for the internal host": lambda url, form, sig: (
        url,
        form,
        RequestValidator(TOKEN).compute_signature("http://127.0.0.1:8000" + url, form),
    ),
    "sha256 instead of sha1": lambda url, form, sig: (
        url,
        form,
        base64.b64encode(
            hmac.new(
                TOKEN.encode(),
                (PUBLIC + url + "".join(k + form[k] for k in sorted(form))).encode(),
                hashlib.sha256,
            ).digest()
        ).decode(),
    ),
}


@pytest.fixture
def signed_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("PUBLIC_BASE_URL", PUBLIC)
    get_settings.cache_clear()
    return get_settings()


@pytest.fixture
async def signed_client(signed_settings, db, redis):
    from api.chat import in_process_client
    from api.main import create_app

    async with in_process_client(create_app(signed_settings), "http://127.0.0.1:8000") as http:
        yield http


def status_form(sid: str) -> dict[str, str]:
    form = load_payload("twilio_status_callback.json")
    form.update(MessageSid=sid, SmsSid=sid, MessageStatus="delivered", SmsStatus="delivered")
    return form


async def send(http, url: str, form: dict[str, str], signature: str | None) -> httpx.Response:
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    return await http.post(url, data=form, headers=headers)


async def counts(db) -> tuple[int, int]:
    async with db.sessions() as session:
        inbound = await session.scalar(select(func.count()).select_from(InboundMessage))
        delivered = await session.scalar(
            select(func.count())
            .select_from(OutboundMessage)
            .where(OutboundMessage.status == "delivered")
        )
    return int(inbound), int(delivered)


async def sent_message(db, provider_id: str) -> None:
    from api.outbox.service import enqueue

    async with db.transaction() as session:
        message = await enqueue(
            session, channel="sms", to=ELIGIBLE_PHONE, body="x", kind="grievance_update"
        )
        assert message is not None
        message.status = "sent"
        message.provider_id = provider_id


@pytest.mark.parametrize("url", [MESSAGING, STATUS])
async def test_every_forgery_of_a_twilio_signature_is_refused_and_changes_nothing(
    signed_client, registry, db, url
):
    validator = RequestValidator(TOKEN)
    refused = 0
    for n, (name, forge) in enumerate(FORGERIES.items()):
        sid = f"SMforged{n:04d}{url[-6:]}"
        if url == STATUS:
            await sent_message(db, sid)
        form = sms_form(ELIGIBLE, sid) if url == MESSAGING else status_form(sid)
        signature = validator.compute_signature(PUBLIC + url, form)
        target, forged_form, forged_signature = forge(url, form, signature)
        response = await send(signed_client, target, forged_form, forged_signature)
        assert response.status_code == 403, (name, response.status_code, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert ELIGIBLE not in response.text
        refused += 1
    assert await counts(db) == (0, 0), "a refused request left a trace"
    # The genuine article still works, through the same client.
    sid = f"SMgenuine{url[-6:]}"
    if url == STATUS:
        await sent_message(db, sid)
    form = sms_form(ELIGIBLE, sid) if url == MESSAGING else status_form(sid)
    genuine = await send(signed_client, url, form, validator.compute_signature(PUBLIC + url, form))
    assert genuine.status_code == (200 if url == MESSAGING else 204)
    assert await counts(db) == ((1, 0) if url == MESSAGING else (0, 1))
    figure(
        f"Forged Twilio signatures on {url}: {refused}/{len(FORGERIES)} forgeries refused with "
        f"403 ({', '.join(FORGERIES)}), nothing stored; the genuine request accepted"
    )


async def test_a_signed_request_replayed_is_answered_once(signed_client, registry, db):
    """A captured, correctly signed message sent again (replay): the stored reply, no new effect."""
    validator = RequestValidator(TOKEN)
    form = sms_form(ELIGIBLE, "SMreplayed0001")
    signature = validator.compute_signature(PUBLIC + MESSAGING, form)
    first = await send(signed_client, MESSAGING, form, signature)
    again = [await send(signed_client, MESSAGING, form, signature) for _ in range(5)]
    assert {r.text for r in again} == {first.text}
    assert await counts(db) == (1, 0)


OLD_TOKEN = "security-test-old-auth-token-98765"


@pytest.mark.parametrize("url", [MESSAGING, STATUS])
async def test_a_token_rotation_loses_no_webhook(settings, monkeypatch, db, registry, url):
    """Rotating TWILIO_AUTH_TOKEN (docs/security.md): a replica deployed with the new token and
    the old one as TWILIO_AUTH_TOKEN_PREVIOUS accepts what Twilio signs before the promotion
    (the old token) and after it (the new one); once the previous token is removed, a request
    signed with it is refused again. Anything else stays refused meanwhile."""
    from api.chat import in_process_client
    from api.main import create_app

    monkeypatch.setenv("PUBLIC_BASE_URL", PUBLIC)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN_PREVIOUS", OLD_TOKEN)
    get_settings.cache_clear()
    during = get_settings()

    def form_for(sid: str) -> dict[str, str]:
        return sms_form(ELIGIBLE, sid) if url == MESSAGING else status_form(sid)

    accepted = 200 if url == MESSAGING else 204
    async with in_process_client(create_app(during), "http://127.0.0.1:8000") as http:
        for n, token in enumerate((OLD_TOKEN, TOKEN)):
            sid = f"SMrotation{n:04d}{url[-6:]}"
            if url == STATUS:
                await sent_message(db, sid)
            form = form_for(sid)
            signature = RequestValidator(token).compute_signature(PUBLIC + url, form)
            response = await send(http, url, form, signature)
            assert response.status_code == accepted, (token, response.text)
        forged = form_for("SMrotationforged" + url[-6:])
        signature = RequestValidator("attacker-token").compute_signature(PUBLIC + url, forged)
        assert (await send(http, url, forged, signature)).status_code == 403
    assert await counts(db) == ((2, 0) if url == MESSAGING else (0, 2))

    monkeypatch.delenv("TWILIO_AUTH_TOKEN_PREVIOUS")
    get_settings.cache_clear()
    async with in_process_client(create_app(get_settings()), "http://127.0.0.1:8000") as http:
        form = form_for("SMrotationafter" + url[-6:])
        signature = RequestValidator(OLD_TOKEN).compute_signature(PUBLIC + url, form)
        assert (await send(http, url, form, signature)).status_code == 403


def test_a_previous_token_without_a_current_one_is_refused(monkeypatch):
    """Alone, TWILIO_AUTH_TOKEN_PREVIOUS would check nothing; Rabta says so instead."""
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN_PREVIOUS", OLD_TOKEN)
    with pytest.raises(ValueError, match="TWILIO_AUTH_TOKEN_PREVIOUS is set without"):
        Settings()


def test_production_cannot_run_without_the_signature_key(monkeypatch):
    monkeypatch.setenv("RABTA_ENV", "production")
    monkeypatch.setenv("RABTA_SECRET_KEY", "x" * 40)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://u@127.0.0.1/db")
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    with pytest.raises(ValueError, match="TWILIO_AUTH_TOKEN"):
        Settings()
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    monkeypatch.delenv("TELEGRAM_WEBHOOK_SECRET", raising=False)
    with pytest.raises(ValueError, match="TELEGRAM_WEBHOOK_SECRET"):
        Settings()


TELEGRAM_FORGERIES: dict[str, str | bytes | None] = {
    "missing": None,
    "empty": "",
    "wrong": "wrong-secret",
    "one character short": SECRET[:-1],
    "one character more": SECRET + "x",
    "other case": SECRET.upper(),
    "padded": f" {SECRET} ",
    "non-ascii": "ﺱecret".encode(),
}


async def test_every_forgery_of_the_telegram_secret_is_refused_and_sends_nothing(
    tg_app,  # noqa: F811
    tg_client,  # noqa: F811
    fake_api,  # noqa: F811
    registry,
    db,
):
    refused = 0
    for n, (name, secret) in enumerate(TELEGRAM_FORGERIES.items()):
        update = payload("text", update_id=990000 + n)
        response = await post_update(tg_client, update, secret=secret)
        assert response.status_code == 403, (name, response.status_code)
        refused += 1
    assert fake_api.called("sendMessage") == []
    assert await counts(db) == (0, 0)
    genuine = await post_update(tg_client, payload("text", update_id=990100), secret=SECRET)
    assert genuine.status_code == 200
    assert len(fake_api.called("sendMessage")) == 1
    figure(
        f"Forged Telegram secret tokens: {refused}/{len(TELEGRAM_FORGERIES)} refused with 403 "
        f"({', '.join(TELEGRAM_FORGERIES)}), no message sent, nothing stored"
    )


async def test_ussd_has_no_signature_so_the_gateway_must_be_allow_listed(client, registry, db):
    """Residual risk, made visible: any client that can reach /webhooks/ussd is believed about
    `phoneNumber`. The app's own defences still hold: a session id arriving from another phone
    is not continued; replies go back over HTTP only (no SMS is sent to the claimed number
    except a complaint's ticket, which needs the whole menu walk)."""
    from tests.ussd.conftest import screen_of, ussd_form

    started = screen_of(
        await client.post("/webhooks/ussd", data=ussd_form("ATUid_sec1", ELIGIBLE_PHONE, ""))
    )
    assert started.startswith("CON ")
    hijack = screen_of(
        await client.post("/webhooks/ussd", data=ussd_form("ATUid_sec1", "+923451112233", "1"))
    )
    assert hijack == "END Yeh session khatam ho gaya. Dobara dial karein."  # "... dial again."
    figure(
        "USSD (no signature in the Africa's Talking convention): forged hits are indistinguishable "
        "in the app; a session id replayed from another phone is refused ('dial again'); "
        "mitigation: allow-list the gateway's IPs at the proxy (docs/security.md)"
    )
