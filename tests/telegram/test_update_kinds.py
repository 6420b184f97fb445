"""Updates Rabta does not answer are acknowledged with 200 and dropped: Telegram delivers an
update it got no 2xx for again and again. Each in the shape the Bot API sends it."""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

import pytest

from api.telegram_cli import run_polling
from tests.telegram.conftest import SHAZIA, payload, post_update

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

USER = {"id": SHAZIA, "is_bot": False, "first_name": "Shazia", "language_code": "ur"}
BOT = {"id": 7000000001, "is_bot": True, "first_name": "Rabta", "username": "rabta_bot"}
CHAT = {"id": SHAZIA, "type": "private", "first_name": "Shazia"}
CHANNEL = {"id": -1001234567890, "type": "channel", "title": "BISP news"}
GROUP = {"id": -1001234567000, "type": "supergroup", "title": "Mohalla committee"}
DATE = 1795430000


def _message_without_chat() -> dict[str, Any]:
    update = payload("text", update_id=734513001)
    del update["message"]["chat"]
    return update


def _message_with_null_chat() -> dict[str, Any]:
    update = payload("text", update_id=734513002)
    update["message"]["chat"] = None
    return update


def _edited() -> dict[str, Any]:
    update = payload("text", update_id=734513003)
    update["edited_message"] = update.pop("message")
    update["edited_message"]["edit_date"] = DATE + 60
    return update


def _button_without_message() -> dict[str, Any]:
    """A button of a message sent in inline mode: Telegram names it, and sends no message."""
    update = payload("callback_query", update_id=734513004)
    del update["callback_query"]["message"]
    update["callback_query"]["inline_message_id"] = "AAAAAAAAAAAAAAAAAAAAAA"
    return update


IGNORED: dict[str, Any] = {
    "message-without-chat": _message_without_chat,
    "message-with-null-chat": _message_with_null_chat,
    "edited-message": _edited,
    "channel-post": lambda: {
        "update_id": 734513005,
        "channel_post": {
            "message_id": 11,
            "date": DATE,
            "chat": CHANNEL,
            "sender_chat": CHANNEL,
            "text": "HELP",
        },
    },
    "edited-channel-post": lambda: {
        "update_id": 734513006,
        "edited_channel_post": {
            "message_id": 11,
            "date": DATE,
            "edit_date": DATE + 60,
            "chat": CHANNEL,
            "sender_chat": CHANNEL,
            "text": "PAY",
        },
    },
    # The bot blocked or unblocked in a private chat is read (tests/telegram/test_blocked.py);
    # in a group it is not Rabta's business.
    "my-chat-member-added-to-a-group": lambda: {
        "update_id": 734513007,
        "my_chat_member": {
            "chat": GROUP,
            "from": USER,
            "date": DATE,
            "old_chat_member": {"status": "left", "user": BOT},
            "new_chat_member": {"status": "member", "user": BOT},
        },
    },
    "callback-query-without-message": _button_without_message,
    "poll": lambda: {
        "update_id": 734513008,
        "poll": {
            "id": "5300000000000000001",
            "question": "PAY?",
            "options": [
                {"persistent_id": "0", "text": "1", "voter_count": 1},
                {"persistent_id": "1", "text": "2", "voter_count": 0},
            ],
            "total_voter_count": 1,
            "is_closed": False,
            "is_anonymous": True,
            "type": "regular",
            "allows_multiple_answers": False,
            "allows_revoting": True,
        },
    },
    "poll-answer": lambda: {
        "update_id": 734513009,
        "poll_answer": {
            "poll_id": "5300000000000000001",
            "user": USER,
            "option_ids": [0],
            "option_persistent_ids": ["0"],
        },
    },
    "inline-query": lambda: {
        "update_id": 734513010,
        "inline_query": {"id": "53", "from": USER, "query": "PAY", "offset": ""},
    },
    "message-reaction": lambda: {
        "update_id": 734513011,
        "message_reaction": {
            "chat": CHAT,
            "message_id": 2,
            "user": USER,
            "date": DATE,
            "old_reaction": [],
            "new_reaction": [{"type": "emoji", "emoji": "👍"}],
        },
    },
    # Shapes the library cannot read (a newer or older Bot API than it knows): sending them
    # again would not make them readable.
    "unreadable-message": lambda: {"update_id": 734513012, "message": "hello"},
    "poll-without-a-field-the-library-requires": lambda: {
        "update_id": 734513013,
        "poll": {"id": "53", "question": "?", "options": [], "total_voter_count": 0},
    },
    "a-kind-added-later": lambda: {"update_id": 734513014, "guest_message": {"id": 1}},
}


@pytest.mark.parametrize("make", list(IGNORED.values()), ids=list(IGNORED))
async def test_an_update_rabta_does_not_answer_is_acknowledged(
    tg_client, fake_api, registry, make, caplog
):
    caplog.set_level(logging.INFO, logger="api.webhooks.telegram")
    response = await post_update(tg_client, make())
    assert response.status_code == 200, response.text
    assert fake_api.sent == []
    assert fake_api.called("answerCallbackQuery") == []
    assert "ignored" in caplog.text


async def test_a_message_without_a_chat_does_not_fail_under_polling(
    telegram_settings, fake_api, db, redis, registry, caplog
):
    """Polling feeds the handlers directly: the update is dropped, not failed and tried again,
    and the message after it is answered."""
    caplog.set_level(logging.INFO, logger="api.webhooks.telegram")
    stop = asyncio.Event()
    task = asyncio.create_task(run_polling(telegram_settings, stop=stop, poll_timeout=1))
    try:
        fake_api.push_update(_message_without_chat())
        fake_api.push_update(copy.deepcopy(payload("text")))
        async with asyncio.timeout(10):
            while not fake_api.sent:
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)
    assert [int(m["chat_id"]) for m in fake_api.sent] == [SHAZIA]
    assert "a message without a chat" in caplog.text
    assert "failed" not in caplog.text
