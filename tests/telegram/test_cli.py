"""`rabta telegram polling | set-webhook | delete-webhook` and `rabta chat --channel telegram`,
against the fake Bot API."""

from __future__ import annotations

import asyncio
import io
import logging

import pytest
from rich.console import Console
from typer.testing import CliRunner

from api.settings import get_settings
from api.telegram_cli import ChatUser, run_polling, run_telegram_chat, telegram_app
from tests.conftest import ELIGIBLE_PHONE, ELIGIBLE_WIFE
from tests.telegram.conftest import SECRET, SHAZIA, payload

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

runner = CliRunner()


async def invoke(*args: str):
    # The command runs its own event loop (asyncio.run) in a thread; the fake Bot API keeps
    # answering on this one.
    return await asyncio.to_thread(runner.invoke, telegram_app, list(args))


async def test_set_webhook(telegram_settings, fake_api):
    result = await invoke(
        "set-webhook", "https://rabta.example.pk/webhooks/telegram", "--drop-pending-updates"
    )
    assert result.exit_code == 0, result.output
    assert "Webhook set" in result.output and "Warning" not in result.output
    (call,) = fake_api.called("setWebhook")
    assert call.params["url"] == "https://rabta.example.pk/webhooks/telegram"
    assert call.params["secret_token"] == SECRET
    # my_chat_member: the person blocking the bot (opting out) or unblocking it.
    assert call.params["allowed_updates"] == ["message", "callback_query", "my_chat_member"]
    assert call.params["drop_pending_updates"] is True


async def test_set_webhook_warns_about_odd_urls(telegram_settings, fake_api):
    result = await invoke("set-webhook", "http://rabta.example.pk:8000/telegram")
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())  # rich wraps long lines
    assert "is not https" in output
    assert "does not end with /webhooks/telegram" in output
    assert "port 8000" in output


async def test_set_webhook_refuses_without_a_secret(telegram_settings, fake_api, monkeypatch):
    monkeypatch.delenv("TELEGRAM_WEBHOOK_SECRET")
    get_settings.cache_clear()
    result = await invoke("set-webhook", "https://rabta.example.pk/webhooks/telegram")
    assert result.exit_code == 2
    assert "TELEGRAM_WEBHOOK_SECRET is not set" in " ".join(result.output.split())
    assert fake_api.called("setWebhook") == []


async def test_set_webhook_refuses_a_secret_telegram_would_refuse(
    telegram_settings, fake_api, monkeypatch
):
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "has spaces!")
    get_settings.cache_clear()
    result = await invoke("set-webhook", "https://rabta.example.pk/webhooks/telegram")
    assert result.exit_code == 2
    assert fake_api.called("setWebhook") == []


async def test_commands_need_a_token(settings):
    result = await invoke("delete-webhook")
    assert result.exit_code == 2 and "TELEGRAM_BOT_TOKEN is not set" in result.output


async def test_delete_webhook_and_info(telegram_settings, fake_api):
    await invoke("set-webhook", "https://rabta.example.pk/webhooks/telegram")
    info = await invoke("webhook-info")
    assert "https://rabta.example.pk/webhooks/telegram" in info.output
    result = await invoke("delete-webhook")
    assert result.exit_code == 0 and "Webhook deleted" in result.output
    assert len(fake_api.called("deleteWebhook")) == 1


async def test_polling_answers_with_the_webhook_handlers(
    telegram_settings, fake_api, db, redis, registry
):
    stop = asyncio.Event()
    task = asyncio.create_task(run_polling(telegram_settings, stop=stop, poll_timeout=1))
    try:
        fake_api.push_update(payload("start_command"))
        fake_api.push_update(payload("text"))
        for _ in range(200):
            if len(fake_api.sent) >= 2:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)
    assert len(fake_api.sent) == 2
    assert [int(m["chat_id"]) for m in fake_api.sent] == [SHAZIA, SHAZIA]
    assert "اہلیت کے لیے" in fake_api.sent[0]["text"]
    assert "35202" in fake_api.sent[1]["text"]
    # Polling removed any webhook first, and asked only for what Rabta handles.
    methods = [c.method for c in fake_api.calls]
    assert methods.index("deleteWebhook") < methods.index("getUpdates")
    assert fake_api.called("getUpdates")[0].params["allowed_updates"] == [
        "message",
        "callback_query",
        "my_chat_member",
    ]


async def polled_until(settings, fake_api, done, *, then_for: float = 0.0) -> None:
    """Poll while one text update is handled, until `done()` and `then_for` seconds more;
    then stop polling."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_polling(settings, stop=stop, poll_timeout=1))
    try:
        fake_api.push_update(payload("text"))
        async with asyncio.timeout(10):
            while not done():
                await asyncio.sleep(0.05)
        await asyncio.sleep(then_for)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)


async def test_polling_hands_an_update_that_failed_to_the_handlers_again(
    telegram_settings, fake_api, db, redis, registry, monkeypatch, caplog
):
    """Under polling, getUpdates has moved past an update whose handling failed (the database
    away) and nobody would send it again: it is handled again after a pause, and answered."""
    from api.conversations.service import receive
    from api.webhooks import telegram as telegram_webhook

    calls = 0

    async def away_at_first(runtime, inbound):
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise ConnectionError("database away")
        return await receive(runtime, inbound)

    monkeypatch.setattr(telegram_webhook, "receive", away_at_first)
    monkeypatch.setattr(telegram_webhook, "POLLING_RETRY_SECONDS", (0.1, 0.2))
    caplog.set_level(logging.INFO)
    await polled_until(telegram_settings, fake_api, lambda: fake_api.sent)
    assert calls == 3
    [reply] = fake_api.sent
    assert "35202" in reply["text"] and int(reply["chat_id"]) == SHAZIA
    assert "failed: handled again in 0 s" in caplog.text


async def test_polling_gives_an_update_up_after_its_tries(
    telegram_settings, fake_api, db, redis, registry, monkeypatch, caplog
):
    from api.webhooks import telegram as telegram_webhook

    calls = 0

    async def away(runtime, inbound):
        nonlocal calls
        calls += 1
        raise ConnectionError("database away")

    monkeypatch.setattr(telegram_webhook, "receive", away)
    monkeypatch.setattr(telegram_webhook, "POLLING_RETRY_SECONDS", (0.05, 0.05))

    def given_up() -> bool:
        return "given up after 3 tries" in caplog.text

    await polled_until(telegram_settings, fake_api, given_up, then_for=0.3)
    assert calls == 3 and fake_api.sent == []  # nothing more tried, as it polled on


@pytest.mark.parametrize("fails_again", [False, True])
async def test_polling_tries_a_waiting_update_once_more_as_it_stops(
    telegram_settings, fake_api, db, redis, registry, monkeypatch, caplog, fails_again
):
    """An update that failed and waits minutes for its next try is not lost when polling
    stops (getUpdates has moved past it): it is handled once more, now; should that fail too,
    it is given up with an ERROR line."""
    from api.conversations.service import receive
    from api.webhooks import telegram as telegram_webhook

    calls = 0

    async def away_at_first(runtime, inbound):
        nonlocal calls
        calls += 1
        if calls == 1 or fails_again:
            raise ConnectionError("database away")
        return await receive(runtime, inbound)

    monkeypatch.setattr(telegram_webhook, "receive", away_at_first)
    monkeypatch.setattr(telegram_webhook, "POLLING_RETRY_SECONDS", (300.0,))
    caplog.set_level(logging.INFO)
    await polled_until(telegram_settings, fake_api, lambda: "handled again in 300 s" in caplog.text)
    assert calls == 2
    assert "1 updates waiting for another try get it now" in caplog.text
    if fails_again:
        assert fake_api.sent == []
        assert "failed as polling stops; given up" in caplog.text
    else:
        [reply] = fake_api.sent
        assert "35202" in reply["text"] and int(reply["chat_id"]) == SHAZIA


async def test_chat_drives_the_real_webhook(settings, db, redis, registry):
    out = io.StringIO()
    lines = iter(["LANG EN", "/start", "PAY", "/share", "PAY", "#2", "/share +923451234567", ""])
    code = await run_telegram_chat(
        phone=ELIGIBLE_PHONE, console=Console(file=out, width=200), lines=lines
    )
    transcript = out.getvalue()
    assert code == 0, transcript
    assert f"telegram as user {ChatUser.for_phone(ELIGIBLE_PHONE).user_id}" in transcript
    assert "Language set to English" in transcript
    assert "buttons: [1] My payment · [2] File a complaint" in transcript
    assert "keyboard: [Share my phone number] (shares your number: /share)" in transcript
    assert "your number is saved" in transcript
    assert "[2] 35202-***4567-2" in transcript
    assert "Kafaalat 2026-Q4: Rs 13,500" in transcript
    assert "someone else's number" in transcript
    assert ELIGIBLE_WIFE not in transcript


async def test_chat_prints_a_reply_in_whole_lines_on_a_narrow_terminal(
    settings, db, redis, registry
):
    """The terminal wraps a long reply; the chat does not cut it mid-word at 80 columns."""
    out = io.StringIO()
    code = await run_telegram_chat(
        phone=ELIGIBLE_PHONE, console=Console(file=out, width=40), lines=iter(["LANG EN", ""])
    )
    assert code == 0
    shown = [line for line in out.getvalue().splitlines() if "Language set to English" in line]
    assert shown and len(shown[0]) > 40, out.getvalue()


async def test_set_webhook_when_telegram_fails(telegram_settings, fake_api):
    fake_api.down = True
    result = await invoke("set-webhook", "https://rabta.example.pk/webhooks/telegram")
    assert result.exit_code == 1
    assert "Telegram: Bad Gateway" in result.output
