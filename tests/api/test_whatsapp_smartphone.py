"""What smartphone users send on WhatsApp besides typed text, through Twilio's signed webhook:
voice notes, photos, files, locations, contact cards, stickers, button replies, greetings.
Rabta reads text only, and says so in the person's language instead of showing the menu."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from api.registry.models import Grievance
from api.settings import get_settings
from tests.api.test_twilio_webhook import PUBLIC, URL, reply_text
from tests.api.test_twilio_webhook import whatsapp as whatsapp_form
from tests.conftest import ELIGIBLE_PHONE, ELIGIBLE_WIFE

TOKEN = "whatsapp-test-auth-token-0123"
MEDIA_URL = "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM0/Media/ME0"

TEXT_ONLY = {
    "en": "I can read typed text only",
    "ur": "میں صرف لکھا ہوا پیغام پڑھ سکتا ہوں",
}
HELP = {"en": "*BISP help*", "ur_Latn": "*BISP madad*", "ur": "*بی آئی ایس پی مدد*"}

_sids = itertools.count(1)


@pytest.fixture
def settings(settings, monkeypatch):
    """Signatures checked, as in production."""
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    get_settings.cache_clear()
    return get_settings()


def whatsapp(body: str = "", sender: str = ELIGIBLE_PHONE, **fields: str) -> dict[str, str]:
    return whatsapp_form(body, f"SM{next(_sids):032x}", sender, **fields)


def media(kind: str, content_type: str, body: str = "") -> dict[str, str]:
    return whatsapp(
        body, MessageType=kind, NumMedia="1", MediaUrl0=MEDIA_URL, MediaContentType0=content_type
    )


async def send(client, form: dict[str, str]) -> str:
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + URL, form)
    return reply_text(await client.post(URL, data=form, headers={"X-Twilio-Signature": signature}))


NO_TEXT = {
    "voice-note": lambda: media("audio", "audio/ogg"),
    "photo": lambda: media("image", "image/jpeg"),
    "pdf": lambda: media("document", "application/pdf"),
    "sticker": lambda: media("sticker", "image/webp"),
    "vcard": lambda: media("contacts", "text/vcard"),
    "location": lambda: whatsapp(
        MessageType="location", Latitude="31.5204", Longitude="74.3587", Address="Lahore"
    ),
    "photo-with-words": lambda: media("image", "image/jpeg", body="my card"),
}


@pytest.mark.parametrize("language", ["en", "ur"])
@pytest.mark.parametrize("kind", list(NO_TEXT))
async def test_media_without_text_asks_to_type(client, registry, kind, language):
    await send(client, whatsapp(f"LANG {language.upper()}"))
    answer = await send(client, NO_TEXT[kind]())
    assert TEXT_ONLY[language] in answer
    assert HELP.get(language, "*") not in answer


async def test_first_message_a_voice_note_is_answered_in_the_default_language(client, registry):
    answer = await send(client, media("audio", "audio/ogg"))
    assert TEXT_ONLY["ur"] in answer


async def test_photo_captioned_with_a_cnic_is_read(client, registry):
    await send(client, whatsapp("LANG EN"))
    answer = await send(client, media("image", "image/jpeg", body=ELIGIBLE_WIFE))
    assert "35202-*******-2 is eligible" in answer


async def test_voice_note_after_help_is_not_served_the_cached_help(client, registry):
    await send(client, whatsapp("LANG EN"))
    assert HELP["en"] in await send(client, whatsapp("HELP"))
    assert TEXT_ONLY["en"] in await send(client, media("audio", "audio/ogg"))
    assert HELP["en"] in await send(client, whatsapp(""))


async def _to_description(client) -> None:
    await send(client, whatsapp("LANG EN"))
    await send(client, whatsapp("COMPLAINT"))
    await send(client, whatsapp("2"))  # the second CNIC registered to this phone
    assert "describe the problem" in await send(client, whatsapp("1"))


async def test_voice_note_as_a_complaint_keeps_the_complaint(client, registry):
    await _to_description(client)
    answer = await send(client, media("audio", "audio/ogg"))
    assert "I can read typed text only" in answer and "type your answer" in answer
    confirm = await send(client, whatsapp("No money received at the campsite"))
    assert "File it?" in confirm
    assert "is filed" in await send(client, whatsapp("1"))


@pytest.mark.parametrize("words", ["🙏🙏🙏", "...", "?? !!", "👍 👍 👍 👍"])
async def test_a_description_of_emoji_or_punctuation_is_not_filed(db, client, registry, words):
    await _to_description(client)
    assert "describe the problem" in await send(client, whatsapp(words))
    assert "describe the problem" in await send(client, whatsapp("1"))
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Grievance)) == 0


async def test_button_reply_is_read_by_its_payload(client, registry):
    await send(client, whatsapp("LANG EN"))
    answer = await send(
        client,
        whatsapp("My payment", MessageType="button", ButtonPayload="PAY", ButtonText="My payment"),
    )
    assert "Several CNICs are registered to this phone" in answer


async def test_button_with_a_payload_rabta_does_not_know_is_read_by_its_label(client, registry):
    await send(client, whatsapp("LANG EN"))
    answer = await send(
        client, whatsapp("Help", MessageType="button", ButtonPayload="tpl-42", ButtonText="Help")
    )
    assert HELP["en"] in answer


@pytest.mark.parametrize(
    ("greeting", "language"),
    [("Hi", "en"), ("Hello!", "en"), ("Assalam o alaikum", "ur_Latn"), ("السلام علیکم", "ur")],
)
async def test_a_greeting_gets_the_menu(client, registry, greeting, language):
    assert HELP[language] in await send(client, whatsapp(greeting))
