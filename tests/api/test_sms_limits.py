"""Rate limits on the SMS path (SPEC §4): one "try again" reply per window, then silence."""

from __future__ import annotations

import re

import pytest

from api.identity import mask_cnic
from api.settings import get_settings
from bot.channels.base import Reply
from tests.api.test_sms_payments import Chat
from tests.conftest import ELIGIBLE, ELIGIBLE_WIFE, NOT_ELIGIBLE, NOT_FOUND, UNDER_REVIEW


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
    # The CNIC's limit refused, not this new phone's: said so, its day's wait in hours.
    told = f"CNIC {mask_cnic(NOT_ELIGIBLE)} has been looked up too many times today"
    assert told in answers[4] and NOT_ELIGIBLE not in answers[4]
    assert re.search(r"try again after (2[0-4]|1[0-9]) hours", answers[4]), answers[4]


async def test_a_first_lookup_is_counted_once_with_the_read(tight, tight_client, registry):
    """A CNIC with nothing stored for its sender has its limits counted with the reply cache's
    read (api/surge.py), not again by the flow; a sender whose conversation is stored is
    counted by the flow: one hit per look-up either way."""
    from api.ratelimit import RateLimiter

    limiter = RateLimiter(tight, tight.redis_url)
    try:
        blank = Chat(tight_client, "+923331113333")
        assert "35202-*******-1" in await blank.send(ELIGIBLE)
        assert (await limiter.test("sender", blank.phone)).remaining == 2
        assert (await limiter.test("cnic", ELIGIBLE)).remaining == 3

        stored = Chat(tight_client, "+923331114444")
        await stored.send("LANG EN")  # a chosen language is stored in the conversation
        assert "is not eligible" in await stored.send(NOT_ELIGIBLE)
        assert (await limiter.test("sender", stored.phone)).remaining == 2
        assert (await limiter.test("cnic", NOT_ELIGIBLE)).remaining == 3
    finally:
        await limiter.close()


async def test_a_sender_refused_with_the_read_is_told_once_and_not_looked_up(
    tight, tight_client, registry, monkeypatch, renderer
):
    """Refused when its limits are counted with the read: the same "try again" reply once,
    then silence, the CNIC not counted and its household not read."""
    from api.conversations import repository
    from api.ratelimit import RateLimiter

    read_ahead: list[str] = []
    reading = repository.get_or_create_contact_reading_household

    async def recorded(session, **kwargs):
        read_ahead.append(kwargs["cnic"])
        return await reading(session, **kwargs)

    monkeypatch.setattr(repository, "get_or_create_contact_reading_household", recorded)
    chat = Chat(tight_client, "+923331115555")
    cnics = [ELIGIBLE, NOT_ELIGIBLE, UNDER_REVIEW, NOT_FOUND, ELIGIBLE_WIFE]
    answers = [await chat.send(cnic) for cnic in cnics]
    assert [cnic[:5] in answer for cnic, answer in zip(cnics, answers, strict=True)] == [
        True,
        True,
        True,
        False,
        False,
    ]
    # In the default language, as the flow says it (the window has an hour to run).
    told = renderer.render(
        [Reply("errors/rate_limited", {"minutes": 60})], language="ur", channel="sms"
    ).text
    assert answers[3] == told
    assert answers[4] == ""  # silence: replies cost money
    assert read_ahead == cnics[:3]
    limiter = RateLimiter(tight, tight.redis_url)
    try:
        assert (await limiter.test("cnic", NOT_FOUND)).remaining == 4, "refused: not counted"
    finally:
        await limiter.close()
