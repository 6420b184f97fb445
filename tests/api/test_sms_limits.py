"""Rate limits on the SMS path (SPEC §4): one "try again" reply per window, then silence."""

from __future__ import annotations

import pytest

from api.settings import get_settings
from tests.api.test_sms_payments import Chat
from tests.conftest import ELIGIBLE, NOT_ELIGIBLE


@pytest.fixture
def tight(settings, monkeypatch):
    monkeypatch.setenv("RABTA_LIMIT_SENDER", "3/hour")
    monkeypatch.setenv("RABTA_LIMIT_CNIC", "4/day")
    get_settings.cache_clear()
    return get_settings()


@pytest.fixture
async def tight_client(tight, db, redis):
    from api.chat import in_process_client
    from api.main import create_app

    async with in_process_client(create_app(tight), "http://127.0.0.1:8000") as http:
        yield http


async def test_sender_limit_answers_once_then_stays_silent(tight_client, registry):
    chat = Chat(tight_client, "+923331112222")
    await chat.send("LANG EN")
    answers = [await chat.send(ELIGIBLE) for _ in range(5)]
    assert all("is eligible" not in a for a in answers[3:])
    assert all("eligible" in a for a in answers[:3])
    assert "Too many requests from this phone" in answers[3]
    assert "minutes" in answers[3] or "minute" in answers[3]
    assert answers[4] == ""  # silence: replies cost money
    # Help is no look-up: still answered.
    assert "Send your CNIC" in await chat.send("HELP")


async def test_one_cnic_is_limited_across_senders(tight_client, registry):
    answers = []
    for n in range(5):
        chat = Chat(tight_client, f"+92333111{n:04d}")
        await chat.send("LANG EN")
        answers.append(await chat.send(NOT_ELIGIBLE))
    assert all("not eligible" in a for a in answers[:4])
    assert "Too many requests" in answers[4]
