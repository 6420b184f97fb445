"""`POST /webhooks/telegram`: real update payloads, the secret token, replays, flood control and
an unreachable Bot API, against a local fake Bot API."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text as sql

from api.conversations.service import receive
from api.outbox.senders import build_senders
from api.outbox.service import deliver_due
from api.telegram_cli import ChatUser
from api.webhooks import telegram as telegram_webhook
from bot.i18n import detect_language
from tests.conftest import ELIGIBLE_WIFE
from tests.telegram.conftest import (
    SHAZIA,
    TelegramChat,
    buttons,
    outbox_rows,
    payload,
    plain,
    post_update,
    text_of,
)

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

MENU = ["menu:payments", "menu:complaint", "menu:track", "menu:language"]


def no_markup(markup: dict) -> bool:
    return not markup


def main_menu(markup: dict) -> bool:
    return [data for _, data in buttons(markup)] == MENU


def removes_keyboard(markup: dict) -> bool:
    return markup.get("remove_keyboard") is True


def contact_button(markup: dict) -> bool:
    rows = markup.get("keyboard") or []
    return (
        len(rows) == 1
        and rows[0][0].get("request_contact") is True
        and rows[0][0]["text"] == "Share my phone number"
        and markup.get("one_time_keyboard") is True
    )


# (payload, what the person said first, text the reply must contain, what its keyboard must be)
CASES = [
    pytest.param("start_command", [], "اہلیت کے لیے", main_menu, id="start-urdu-app"),
    pytest.param(
        "start_command",
        ["LANG EN"],
        "Send your CNIC to check eligibility",
        main_menu,
        id="start-english",
    ),
    pytest.param("text", [], "35202-*******-2", no_markup, id="cnic-urdu-digits-masked"),
    pytest.param("text", [], "کے لیے اہل ہے", no_markup, id="cnic-urdu-digits-eligible-urdu"),
    pytest.param("text", ["LANG EN"], "35202-*******-2 is eligible", no_markup, id="cnic-en"),
    pytest.param(
        "own_contact", ["LANG EN"], "your number is saved", removes_keyboard, id="own-contact"
    ),
    pytest.param(
        "someone_elses_contact",
        ["LANG EN"],
        "That is someone else's number",
        contact_button,
        id="someone-elses-contact",
    ),
    pytest.param(
        "callback_query",
        ["LANG EN"],
        "This phone is not registered",
        contact_button,
        id="menu-payments-button-unverified",
    ),
]


@pytest.mark.parametrize(("name", "before", "expected", "keyboard"), CASES)
async def test_payload_case(tg_client, fake_api, registry, name, before, expected, keyboard):
    chat = TelegramChat(tg_client, fake_api)
    for line in before:
        await chat.send(line)
    sent = await chat.post(payload(name))
    assert len(sent) == 1
    assert expected in text_of(sent)
    assert int(sent[0]["chat_id"]) == SHAZIA
    assert keyboard(sent[0].get("reply_markup") or {}), sent[0].get("reply_markup")


async def test_button_press_is_answered_then_read_as_text(tg_client, fake_api, registry):
    chat = TelegramChat(tg_client, fake_api)
    await chat.post(payload("callback_query"))
    answered = fake_api.called("answerCallbackQuery")
    assert [c.params["callback_query_id"] for c in answered] == ["4382bfdwdsb323b2d9"]
    # The spinner stops before the reply is sent.
    methods = [c.method for c in fake_api.calls if c.method != "getMe"]
    assert methods == ["answerCallbackQuery", "sendMessage"]


async def test_language_by_inline_button(tg_client, fake_api, registry):
    chat = TelegramChat(tg_client, fake_api)
    menu = await chat.send("LANG")
    assert "Choose your language" in menu
    choices = buttons(chat.last_markup())
    assert [data for _, data in choices] == [
        "LANG EN",
        "LANG UR",
        "LANG RU",
        "LANG SD",
        "LANG PS",
        "LANG PA",
    ]
    assert ("اردو", "LANG UR") in choices
    assert "English" not in menu  # the choices are buttons, not text
    assert "زبان اردو" in await chat.press("LANG UR")
    assert "اہلیت کے لیے" in await chat.send("HELP")
    assert "Language set to English" in await chat.press("LANG EN")


@pytest.mark.parametrize(
    ("app_language", "help_text", "language"),
    [
        pytest.param("en", "مدد", "ur", id="english-app-urdu-menu"),
        pytest.param("ur", "HELP", "en", id="urdu-app-english-menu"),
        pytest.param(None, "HELP", "en", id="no-app-language-english-menu"),
        pytest.param("ur", "مينيو", "sd", id="urdu-app-sindhi-menu"),
        pytest.param("ur", "مرسته", "ps", id="urdu-app-pashto-menu"),
    ],
)
@pytest.mark.parametrize("button", ["menu:payments", "menu:track", "menu:complaint"])
async def test_menu_buttons_keep_the_menus_language(
    tg_client, fake_api, registry, app_language, help_text, language, button
):
    """A menu button answers in the language the menu was shown in, not the app's."""
    user = ChatUser(SHAZIA, first_name="Shazia", language_code=app_language)
    chat = TelegramChat(tg_client, fake_api, user)
    menu = await chat.send(help_text)
    assert main_menu(chat.last_markup())
    assert detect_language(menu) == language
    assert detect_language(await chat.press(button)) == language
    assert detect_language(await chat.send("")) == language  # and the conversation goes on in it


@pytest.mark.parametrize("app_language", ["sd", "ps"])
async def test_commands_from_a_sindhi_or_pashto_app_are_answered_in_its_language(
    tg_client, fake_api, registry, app_language
):
    user = ChatUser(SHAZIA, first_name="Shazia", language_code=app_language)
    chat = TelegramChat(tg_client, fake_api, user)
    assert detect_language(await chat.send("/start")) == app_language
    assert main_menu(chat.last_markup())
    assert detect_language(await chat.press("menu:track")) == app_language
    assert detect_language(await chat.send("/stop")) == app_language


async def test_lang_command_with_a_code(tg_client, fake_api, registry):
    chat = TelegramChat(tg_client, fake_api)
    assert "Language set to English" in await chat.send("/lang en")
    assert "Send your CNIC" in await chat.send("/help")


# -- the secret token and malformed requests ---------------------------------------------------


@pytest.mark.parametrize(
    "secret",
    [None, "", "wrong-secret", "test-secret_0123456789-ab", "ﺱecret".encode()],
    ids=repr,
)
async def test_missing_or_wrong_secret_is_403(tg_client, fake_api, registry, secret):
    response = await post_update(tg_client, payload("text"), secret=secret)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert fake_api.sent == []


async def test_telegram_not_configured_is_404(client, registry):
    response = await post_update(client, payload("text"))
    assert response.status_code == 404


async def test_token_without_secret_refuses_everything(settings, fake_api, db, redis, monkeypatch):
    from api.chat import in_process_client
    from api.main import create_app
    from api.settings import get_settings

    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", fake_api.base_url)
    get_settings.cache_clear()
    async with in_process_client(create_app(get_settings()), "http://t") as http:
        assert (await post_update(http, payload("text"), secret="")).status_code == 403
        assert (await post_update(http, payload("text"), secret="x")).status_code == 403


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ("update_id=1", "application/x-www-form-urlencoded", 415),
        ("{not json", "application/json", 422),
        ("[1, 2]", "application/json", 422),
        ('{"message": {}}', "application/json", 422),
        ('{"update_id": "7"}', "application/json", 422),
        ('{"update_id": true}', "application/json", 422),
        ("[" * 20000 + "]" * 20000, "application/json", 422),
    ],
)
async def test_bad_bodies(tg_client, fake_api, registry, body, content_type, status):
    from tests.telegram.conftest import SECRET, URL

    response = await tg_client.post(
        URL,
        content=body.encode(),
        headers={"content-type": content_type, "X-Telegram-Bot-Api-Secret-Token": SECRET},
    )
    assert response.status_code == status, response.text
    assert fake_api.sent == []


async def test_update_kinds_rabta_ignores_are_acknowledged(tg_client, fake_api, registry):
    group = payload("text")
    group["message"]["chat"] = {"id": -100123, "type": "group", "title": "Family"}
    edited = payload("text", update_id=734519999)
    edited["edited_message"] = edited.pop("message")
    for update in (group, edited, {"update_id": 734519998}):
        assert (await post_update(tg_client, update)).status_code == 200
    assert fake_api.sent == []


# -- exactly once ----------------------------------------------------------------------------


async def test_replayed_update_sends_nothing_and_does_nothing_again(tg_client, fake_api, registry):
    chat = TelegramChat(tg_client, fake_api)
    first = chat.user.text("LANG UR")
    assert len(await chat.post(first)) == 1
    # Telegram redelivers the same update_id (here with other words): one reply only, no change.
    replay = chat.user.text("LANG EN")
    replay["update_id"] = first["update_id"]
    assert await chat.post(replay) == []
    assert await chat.post(first) == []
    assert "اہلیت کے لیے" in await chat.send("HELP")  # still Urdu


async def test_concurrent_duplicates_reply_once(tg_client, fake_api, registry):
    update = payload("text")
    responses = await asyncio.gather(*[post_update(tg_client, update) for _ in range(5)])
    assert {r.status_code for r in responses} == {200}
    assert len(fake_api.sent) == 1


# -- flood control and outages ------------------------------------------------------------------


async def test_429_is_retried_after_retry_after(tg_app, tg_client, fake_api, registry):
    fake_api.flood(retry_after=1)
    started = time.monotonic()
    sent = await TelegramChat(tg_client, fake_api).post(payload("text"))
    assert time.monotonic() - started >= 1.0
    assert len(fake_api.called("sendMessage")) == 2
    assert len(sent) == 1 and "35202-*******-2" in plain(sent[0]["text"])
    assert await outbox_rows(tg_app) == []


async def test_a_second_429_puts_the_reply_in_the_outbox(tg_app, tg_client, fake_api, registry):
    fake_api.flood(retry_after=1, times=2)
    sent = await TelegramChat(tg_client, fake_api).post(payload("text"))
    assert sent == []
    rows = await outbox_rows(tg_app)
    assert len(rows) == 1
    row = rows[0]
    assert (row.channel, row.to, row.kind, row.priority) == ("telegram", str(SHAZIA), "reply", 1)
    assert "35202-*******-2" in plain(row.body)


async def test_a_long_flood_wait_goes_to_the_outbox_at_once(tg_app, tg_client, fake_api, registry):
    fake_api.flood(retry_after=60)
    started = time.monotonic()
    await TelegramChat(tg_client, fake_api).post(payload("text"))
    assert time.monotonic() - started < 5
    assert len(await outbox_rows(tg_app)) == 1


async def test_bot_api_down_the_reply_is_queued_then_delivered(
    tg_app, tg_client, fake_api, registry
):
    chat = TelegramChat(tg_client, fake_api)
    await chat.send("LANG EN")
    fake_api.down = True
    assert await chat.post(chat.user.text(ELIGIBLE_WIFE)) == []  # still 200 for Telegram
    rows = await outbox_rows(tg_app)
    assert len(rows) == 1 and rows[0].status == "pending"
    assert "35202-*******-2 is eligible" in rows[0].body
    # Telegram is back: the outbox worker delivers the reply, once.
    fake_api.down = False
    runtime = tg_app.state.runtime
    report = await deliver_due(runtime.db, build_senders(runtime.settings), worker_id="t")
    assert report.sent == 1
    delivered = fake_api.sent[-1]
    assert "35202-*******-2 is eligible" in delivered["text"]
    assert int(delivered["chat_id"]) == SHAZIA
    assert len([m for m in fake_api.sent if "is eligible" in m["text"]]) == 1


async def test_unreachable_at_start_up_then_lazily_started(
    telegram_settings, fake_api, db, redis, registry, monkeypatch
):
    from api.chat import in_process_client
    from api.main import create_app

    monkeypatch.setattr(telegram_webhook, "REINIT_INTERVAL_SECONDS", 0.0)
    fake_api.down = True
    app = create_app(telegram_settings)
    async with in_process_client(app, "http://t") as http:  # start-up survives getMe failing
        assert app.state.telegram is not None and not app.state.telegram.ready
        response = await post_update(http, payload("text"))
        assert response.status_code == 503  # nothing done: Telegram sends it again
        assert "Retry-After" in response.headers
        fake_api.down = False
        assert (await post_update(http, payload("text"))).status_code == 200
        assert app.state.telegram.ready
        assert len(fake_api.sent) == 1


async def test_no_bot_api_at_all_does_not_stop_start_up(settings, db, redis, monkeypatch):
    from api.chat import in_process_client
    from api.main import create_app
    from api.settings import get_settings

    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "s3cret")
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", "http://127.0.0.1:9/bot")  # discard port
    get_settings.cache_clear()
    async with in_process_client(create_app(get_settings()), "http://t") as http:
        response = await post_update(http, payload("text"), secret="s3cret")
        assert response.status_code == 503


async def test_a_failing_conversation_asks_telegram_to_resend(
    tg_client, fake_api, registry, monkeypatch
):
    async def broken(runtime, inbound):
        raise RuntimeError("database went away")

    monkeypatch.setattr(telegram_webhook, "receive", broken)
    response = await post_update(tg_client, payload("text"))
    assert response.status_code == 503
    assert fake_api.sent == []


# -- a stall ----------------------------------------------------------------------------------


async def test_an_update_the_database_stalls_is_503_in_time_and_answered_once(
    tg_client, fake_api, registry, answer_within_300_ms
):
    """A database that stalls rather than refusing (a partition, a lock held too long): the
    webhook answers 503 once RABTA_SURGE_ANSWER_WITHIN_MS has passed, so Telegram delivers the
    update again, and the handling goes on; once the database answers, the reply is sent, and
    the update delivered again is a replay that sends nothing."""
    if registry.engine.dialect.name != "postgresql":
        pytest.skip("the stall is a PostgreSQL table lock")
    update = payload("text")
    late = {"reason": "answer_late", "family": "webhooks"}
    late_before = REGISTRY.get_sample_value("rabta_load_shed_total", late) or 0
    async with registry.engine.begin() as locker:
        await locker.execute(sql("LOCK TABLE contacts IN ACCESS EXCLUSIVE MODE"))
        async with asyncio.timeout(5):  # the stall itself is unbounded
            response = await post_update(tg_client, update)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "2"
        assert fake_api.sent == []
        assert REGISTRY.get_sample_value("rabta_load_shed_total", late) == late_before + 1
    async with asyncio.timeout(10):  # liveness, not speed
        while not fake_api.sent:
            await asyncio.sleep(0.02)
    assert (await post_update(tg_client, update)).status_code == 200
    [reply] = fake_api.sent
    assert "35202-*******-2" in plain(reply["text"]) and int(reply["chat_id"]) == SHAZIA


async def test_a_late_update_that_then_fails_is_answered_when_delivered_again(
    tg_client, fake_api, registry, answer_within_300_ms, monkeypatch, caplog
):
    """The handling that went on fails after all (nothing recorded): the update Telegram
    delivers again is answered then, and the failure is in the log."""
    failed = asyncio.Event()

    async def stalls_then_fails(runtime, inbound):
        try:
            await asyncio.sleep(0.6)
            raise ConnectionError("database away")
        finally:
            failed.set()

    monkeypatch.setattr(telegram_webhook, "receive", stalls_then_fails)
    update = payload("text")
    assert (await post_update(tg_client, update)).status_code == 503
    async with asyncio.timeout(5):
        await failed.wait()
    monkeypatch.setattr(telegram_webhook, "receive", receive)  # the database is back
    assert fake_api.sent == []
    assert "telegram update not handled in time" in caplog.text
    assert "not answered: database away" in caplog.text  # an outage: INFO, no traceback
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    sent = await TelegramChat(tg_client, fake_api).post(update)
    assert len(sent) == 1 and "35202-*******-2" in plain(sent[0]["text"])
