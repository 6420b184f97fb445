"""The Telegram channel's pure parts: composing, commands, menu buttons, long messages, long
button data, and the language that follows a person across channels."""

from __future__ import annotations

import datetime as dt
import inspect

import pytest
from sqlalchemy import select

from api.conversations import people
from api.registry.models import Contact
from bot.channels import CHANNELS
from bot.channels.telegram import (
    MAX_MESSAGE_CHARS,
    command_text,
    keyword_script,
    menu_text,
    split_message,
    telegram,
)
from bot.dialogue.keywords import Intent, parse
from bot.i18n import detect_language
from tests.conftest import ELIGIBLE_PHONE, NOT_ELIGIBLE_PHONE
from tests.telegram.conftest import SHAZIA, TelegramChat

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


def test_registered_and_composes_paragraphs_without_options():
    assert CHANNELS["telegram"] is telegram
    text = telegram.compose(["One.", "", "Two."], [("English", "LANG EN")])
    assert text == "One.\n\nTwo."


@pytest.mark.parametrize(
    ("language_code", "default", "script"),
    [
        ("ur", "ur", "ur"),
        ("en", "ur", "en"),
        ("en-GB", "ur", "en"),
        ("pa", "en", "ur"),
        ("ps", "en", "ps"),
        ("sd", "ur", "sd"),
        ("ps-AF", "ur", "ps"),
        (None, "ur", "ur"),
        (None, "en", "en"),
        ("de", "ur_Latn", "ur_Latn"),
        ("de", "sd", "sd"),
        ("de", "pa_Arab", "ur"),
    ],
)
def test_keyword_script(language_code, default, script):
    assert keyword_script(language_code, default) == script


@pytest.mark.parametrize(
    ("command", "argument", "intent", "argument_out"),
    [
        ("start", "", Intent.HELP, ""),
        ("start", "deeplink-payload", Intent.HELP, ""),
        ("help", "", Intent.HELP, ""),
        ("lang", "ur", Intent.LANGUAGE, "ur"),
        ("pay", "3520212345672", Intent.PAY, "3520212345672"),
        ("complaint", "", Intent.COMPLAINT, ""),
        ("track", "G-7K3M9Q", Intent.TRACK, "G-7K3M9Q"),
        ("stop", "", Intent.STOP, ""),
    ],
)
@pytest.mark.parametrize("script", ["en", "ur", "ur_Latn", "sd", "ps"])
def test_commands_become_keywords_in_the_persons_script(
    command, argument, intent, argument_out, script
):
    text = command_text(command, argument, script=script)
    assert text is not None
    parsed = parse(text)
    assert (parsed.intent, parsed.argument) == (intent, argument_out)
    assert detect_language(text) == script


def test_unknown_commands_and_menu_buttons():
    assert command_text("weather", "", script="en") is None
    assert menu_text("menu:payments", language="en") == "PAY"
    assert menu_text("menu:language", language="ur") == "زبان"
    assert menu_text("LANG UR", language="en") is None


@pytest.mark.parametrize("language", ["en", "ur", "ur_Latn"])
@pytest.mark.parametrize(
    ("data", "intent"),
    [
        ("menu:payments", Intent.PAY),
        ("menu:complaint", Intent.COMPLAINT),
        ("menu:track", Intent.TRACK),
        ("menu:language", Intent.LANGUAGE),
    ],
)
def test_menu_buttons_read_as_the_conversations_language(data, intent, language):
    """A button is spelled so the dialogue guesses the language it already speaks, whatever the
    person's app is set to."""
    text = menu_text(data, language=language)
    assert text is not None
    assert parse(text).intent is intent
    assert detect_language(text) == language


@pytest.mark.parametrize("data", ["menu:complaint", "menu:track", "menu:language"])
def test_menu_buttons_keep_a_sindhi_conversation_sindhi(data):
    """Where the keyword table has a Sindhi spelling, a Sindhi conversation is not turned Urdu."""
    assert detect_language(menu_text(data, language="sd") or "") == "sd"


def test_split_message():
    assert split_message("  ") == []
    assert split_message("short") == ["short"]
    paragraphs = "\n\n".join(f"{i} " + "x" * 999 for i in range(9))
    parts = split_message(paragraphs)
    assert all(len(p) <= MAX_MESSAGE_CHARS for p in parts)
    assert "\n\n".join(parts) == paragraphs
    unbroken = "y" * (MAX_MESSAGE_CHARS * 2 + 5)
    assert [len(p) for p in split_message(unbroken)] == [MAX_MESSAGE_CHARS] * 2 + [5]


async def test_long_button_data_is_kept_behind_a_short_key(tg_app, fake_api, registry):
    from telegram import Update

    from api.webhooks.telegram import TelegramHandlers

    handlers = TelegramHandlers(tg_app.state.runtime)
    long_reply = "PAY " + "3520212345672 " * 8
    data = await handlers._callback_data(long_reply)
    assert data is not None and len(data.encode()) <= 64 and data.startswith("k:")
    assert await handlers._callback_data("LANG UR") == "LANG UR"
    update = Update.de_json(
        {
            "update_id": 1,
            "callback_query": {
                "id": "q",
                "chat_instance": "c",
                "data": data,
                "from": {"id": SHAZIA, "is_bot": False, "first_name": "S"},
            },
        },
        tg_app.state.telegram.application.bot,
    )
    assert await handlers._button_text(data, update) == long_reply
    assert await handlers._button_text("k:unknown", update) == ""


# -- one person across channels (api/conversations/people.py) ---------------------------------


async def _contact(
    session,
    channel: str,
    address: str,
    phone: str | None,
    language: str | None,
    minutes_ago: int = 0,
) -> Contact:
    contact = Contact(
        channel=channel,
        address=address,
        phone=phone,
        language=language,
        opted_out=False,
        last_inbound_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago),
    )
    session.add(contact)
    await session.flush()
    return contact


async def test_language_for_phone_prefers_the_latest_channel(db):
    async with db.transaction() as session:
        await _contact(session, "sms", ELIGIBLE_PHONE, ELIGIBLE_PHONE, "ur", minutes_ago=60)
        await _contact(session, "whatsapp", ELIGIBLE_PHONE, ELIGIBLE_PHONE, "ur_Latn", 5)
        await _contact(session, "ussd", ELIGIBLE_PHONE, ELIGIBLE_PHONE, None, 1)
        await _contact(session, "sms", NOT_ELIGIBLE_PHONE, NOT_ELIGIBLE_PHONE, "sd")
    async with db.transaction() as session:
        assert await people.language_for_phone(session, phone=ELIGIBLE_PHONE) == "ur_Latn"
        assert await people.language_for_phone(session, phone="+923219999999") is None


async def test_sync_language_follows_the_phone(db):
    async with db.transaction() as session:
        await _contact(session, "sms", ELIGIBLE_PHONE, ELIGIBLE_PHONE, "ur")
        await _contact(session, "whatsapp", ELIGIBLE_PHONE, ELIGIBLE_PHONE, None)
        await _contact(session, "telegram", str(SHAZIA), ELIGIBLE_PHONE, "en")
        await _contact(session, "telegram", "5099999999", None, None)
        await _contact(session, "sms", NOT_ELIGIBLE_PHONE, NOT_ELIGIBLE_PHONE, "sd")
    async with db.transaction() as session:
        assert await people.sync_language(session, phone=ELIGIBLE_PHONE, language="en") == 2
    async with db.sessions() as session:
        rows = (await session.execute(select(Contact.address, Contact.language))).all()
    languages = dict(rows)
    assert languages[ELIGIBLE_PHONE] == "en"
    assert languages[str(SHAZIA)] == "en"
    assert languages["5099999999"] is None
    assert languages[NOT_ELIGIBLE_PHONE] == "sd"


def _wired() -> bool:
    from api.conversations import service

    return "people." in inspect.getsource(service)


@pytest.mark.skipif(not _wired(), reason="api/conversations/service.py does not call people yet")
async def test_language_follows_the_person_from_sms_to_telegram_and_back(
    tg_client, fake_api, registry, db
):
    from tests.api.test_twilio_webhook import URL as SMS_URL
    from tests.api.test_twilio_webhook import reply_text, sms

    assert "زبان اردو" in reply_text(
        await tg_client.post(SMS_URL, data=sms("LANG UR", "SMpeople1"))
    )
    chat = TelegramChat(tg_client, fake_api)
    await chat.send("hello")  # English letters: guessed English, nothing chosen yet
    # Her own card links the Telegram chat to her phone: her Urdu comes along.
    saved = await chat.share(ELIGIBLE_PHONE)
    assert "Thank you" not in saved
    assert "اہلیت کے لیے" in await chat.send("HELP")
    # A change on Telegram shows on SMS.
    await chat.send("LANG EN")
    help_sms = reply_text(await tg_client.post(SMS_URL, data=sms("HELP", "SMpeople2")))
    assert "Send your CNIC to check eligibility" in help_sms


def test_the_bot_token_never_reaches_the_log(caplog):
    import logging

    import api.webhooks.telegram  # noqa: F401 - installs the filter

    with caplog.at_level(logging.INFO, logger="httpx"):
        logging.getLogger("httpx").info(
            'HTTP Request: %s %s "%s %d %s"',
            "POST",
            "https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage",
            "HTTP/1.1",
            200,
            "OK",
        )
    assert "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw" not in caplog.text
    assert "/bot<token>/sendMessage" in caplog.text
