"""What people send the Telegram bot besides typed text: voice notes, photos, files, locations,
stickers, greetings, and what it sends back: a clear "type it" in their language, never the
menu in place of an answer, never a word to a group."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from api.registry.models import Grievance
from api.telegram_cli import ChatUser
from tests.conftest import ELIGIBLE_PHONE, ELIGIBLE_WIFE
from tests.telegram.conftest import SHAZIA, TelegramChat, text_of

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

FILE = {"file_id": "AwACAgQAAxkBAAIB", "file_unique_id": "AgADBQAD"}
TEXT_ONLY = {"en": "I can read typed text only", "ur": "میں صرف لکھا ہوا پیغام پڑھ سکتا ہوں"}

NO_TEXT: dict[str, dict[str, Any]] = {
    "voice-note": {"voice": {**FILE, "duration": 4, "mime_type": "audio/ogg"}},
    "photo": {"photo": [{**FILE, "width": 90, "height": 60}]},
    "pdf": {"document": {**FILE, "file_name": "cnic.pdf", "mime_type": "application/pdf"}},
    "location": {"location": {"latitude": 31.5204, "longitude": 74.3587}},
    "sticker": {
        "sticker": {
            **FILE,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
        }
    },
}


def chat_for(tg_client, fake_api, language_code: str = "ur") -> TelegramChat:
    user = ChatUser(SHAZIA, first_name="Shazia", language_code=language_code)
    return TelegramChat(tg_client, fake_api, user)


@pytest.mark.parametrize("language", ["en", "ur"])
@pytest.mark.parametrize("kind", list(NO_TEXT))
async def test_media_without_caption_asks_to_type(tg_client, fake_api, registry, kind, language):
    chat = chat_for(tg_client, fake_api)
    await chat.send(f"LANG {language.upper()}")
    sent = await chat.post(chat.user._message(**NO_TEXT[kind]))
    assert len(sent) == 1
    assert TEXT_ONLY[language] in text_of(sent)
    # Not the main menu's buttons: the answer is "type it", not "choose".
    assert "inline_keyboard" not in (sent[0].get("reply_markup") or {})


async def test_photo_captioned_with_a_cnic_is_read(tg_client, fake_api, registry):
    chat = chat_for(tg_client, fake_api)
    await chat.send("LANG EN")
    photo = chat.user._message(caption=ELIGIBLE_WIFE, **NO_TEXT["photo"])
    assert "35202-*******-2 is eligible" in text_of(await chat.post(photo))


async def test_voice_note_as_a_complaint_is_not_filed_and_keeps_the_complaint(
    db, tg_client, fake_api, registry
):
    chat = chat_for(tg_client, fake_api, "en")
    await chat.send("LANG EN")
    await chat.share(ELIGIBLE_PHONE)
    await chat.send("COMPLAINT")
    await chat.send("2")
    assert "describe the problem" in await chat.send("1")
    answer = text_of(await chat.post(chat.user._message(**NO_TEXT["voice-note"])))
    assert "type your answer" in answer
    assert "describe the problem" in await chat.send("🙏🙏🙏")
    assert "File it?" in await chat.send("The agent kept 2000 rupees")
    assert "is filed" in await chat.send("1")
    async with db.sessions() as session:
        filed = (await session.scalars(select(Grievance))).all()
    assert [g.description for g in filed] == ["The agent kept 2000 rupees"]


async def test_emoji_only_description_is_never_filed(db, tg_client, fake_api, registry):
    chat = chat_for(tg_client, fake_api, "en")
    await chat.send("LANG EN")
    await chat.share(ELIGIBLE_PHONE)
    await chat.send("COMPLAINT")
    await chat.send("2")
    await chat.send("1")
    assert "describe the problem" in await chat.send("😡😡😡")
    assert "describe the problem" in await chat.send("1")
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Grievance)) == 0


@pytest.mark.parametrize(("greeting", "expected"), [("Hi", "Send your CNIC"), ("سلام", "اہلیت")])
async def test_a_greeting_gets_the_menu_with_its_buttons(
    tg_client, fake_api, registry, greeting, expected
):
    chat = chat_for(tg_client, fake_api)
    sent = await chat.post(chat.user.text(greeting))
    assert expected in text_of(sent)
    assert "inline_keyboard" in (sent[-1].get("reply_markup") or {})


@pytest.mark.parametrize("chat_type", ["group", "supergroup"])
@pytest.mark.parametrize("content", [{"text": "PAY"}, NO_TEXT["voice-note"], {"text": "Hi"}])
async def test_nothing_is_said_in_a_group(tg_client, fake_api, registry, chat_type, content):
    chat = chat_for(tg_client, fake_api)
    update = chat.user._message(**content)
    update["message"]["chat"] = {"id": -1001999000111, "type": chat_type, "title": "Mohalla"}
    assert await chat.post(update) == []


@pytest.mark.parametrize("chat_type", ["group", "supergroup"])
async def test_a_button_pressed_in_a_group_is_not_answered(
    tg_client, fake_api, registry, chat_type
):
    """A button under a message in a group (Rabta never puts one there, but an update can say
    so) is not answered either: its answer would be personal, and the group would read it."""
    chat = chat_for(tg_client, fake_api)
    update = chat.user.press("HELP")
    update["callback_query"]["message"]["chat"] = {
        "id": -1001999000111,
        "type": chat_type,
        "title": "Mohalla",
    }
    assert await chat.post(update) == []
