"""The "try again" reply of the look-up limits (SPEC §4): which limit refused, and a wait a
person can act on."""

from __future__ import annotations

import pytest

from api.identity import mask_cnic
from api.settings import get_settings
from bot.channels.base import Reply
from bot.i18n import LANGUAGES
from bot.i18n_report import sms_budget
from bot.segments import measure
from tests.api.test_sms_payments import Chat
from tests.conftest import ELIGIBLE, NOT_ELIGIBLE


def told(renderer, language: str, **context) -> str:
    """The reply as the flows send it: a CNIC's limit names the CNIC (masked)."""
    reply = Reply("errors/rate_limited", {"cnic": "35202-*******-1", **context})
    return renderer.render([reply], language=language, channel="sms").text


@pytest.mark.parametrize(
    ("minutes", "wait"),
    [
        (1, "1 minute."),
        (90, "90 minutes."),
        (91, "2 hours."),
        (1439, "24 hours."),
        (61 * 60, "61 hours."),
    ],
)
def test_a_wait_over_90_minutes_is_told_in_hours_rounded_up(renderer, minutes, wait):
    for scope in ("sender", "cnic"):
        assert told(renderer, "en", minutes=minutes, scope=scope).endswith(f"after {wait}")


def test_a_cnic_limit_is_not_blamed_on_the_phone(renderer):
    cnic = told(renderer, "en", minutes=1439, scope="cnic", cnic="35202-*******-1")
    assert cnic == (
        "CNIC 35202-*******-1 has been looked up too many times today. "
        "Please try again after 24 hours."
    )
    assert told(renderer, "en", minutes=12, scope="sender") == (
        "Too many requests from this phone. Please try again after 12 minutes."
    )
    # Without a scope (the flow passes none), the sender's wording, as before.
    assert told(renderer, "en", minutes=12) == told(renderer, "en", minutes=12, scope="sender")
    for language in LANGUAGES:
        texts = {
            told(renderer, language, minutes=m, scope=s)
            for m in (30, 1439)
            for s in ("sender", "cnic")
        }
        assert len(texts) == 4, language  # four wordings, each translated


@pytest.fixture
async def cnic_limited_client(settings, db, redis, monkeypatch):
    from api.chat import in_process_client
    from api.main import create_app

    monkeypatch.setenv("RABTA_LIMIT_SENDER", "20/hour")
    monkeypatch.setenv("RABTA_LIMIT_CNIC", "2/day")
    get_settings.cache_clear()
    async with in_process_client(create_app(get_settings()), "http://127.0.0.1:8000") as http:
        yield http


async def test_a_sender_is_told_once_about_each_limited_cnic(cnic_limited_client, registry):
    """Once per refusal window of the limit that refused: a CNIC refused for the day does not
    silence this phone's answer about another limited CNIC."""
    for n, cnic in enumerate((ELIGIBLE, ELIGIBLE, NOT_ELIGIBLE, NOT_ELIGIBLE)):
        other = Chat(cnic_limited_client, f"+92333222{n:04d}")
        await other.send("LANG EN")
        assert "eligible" in await other.send(cnic)
    chat = Chat(cnic_limited_client, "+923332229999")
    await chat.send("LANG EN")
    first = await chat.send(ELIGIBLE)
    assert "has been looked up too many times today" in first
    assert mask_cnic(ELIGIBLE) in first and ELIGIBLE not in first
    assert await chat.send(ELIGIBLE) == ""  # told about this CNIC: silence
    # Another CNIC refused: told about it, by its own (masked) number.
    assert await chat.send(NOT_ELIGIBLE) == first.replace(
        mask_cnic(ELIGIBLE), mask_cnic(NOT_ELIGIBLE)
    )
    assert await chat.send(NOT_ELIGIBLE) == ""


def test_every_wording_keeps_the_sms_budget(renderer):
    for language in LANGUAGES:
        for minutes in (90, 1439):
            for scope in ("sender", "cnic"):
                cost = measure(told(renderer, language, minutes=minutes, scope=scope))
                assert cost.segments <= sms_budget("errors/rate_limited", language), language
