"""A spare reply (the "language set" line before a question asked again) goes in an SMS only
when the answer with it stays within the segment budget of its other replies (SPEC §2);
channels that bill no segments always say it."""

from __future__ import annotations

import pytest

from bot.channels.base import Reply
from bot.channels.sms import sms_budget
from bot.segments import measure

CHANGED = Reply("language/changed", spare=True)


def answer(renderer, question: str, language: str, channel: str = "sms") -> str:
    return renderer.render([CHANGED, Reply(question)], language=language, channel=channel).text


def alone(renderer, name: str, language: str, channel: str = "sms") -> str:
    return renderer.render_text(name, {}, language=language, channel=channel)


@pytest.mark.parametrize(
    ("language", "question"),
    [
        ("en", "grievance/ask_description"),  # 136 characters: one segment
        ("ur_Latn", "grievance/ask_cnic"),
        ("ur", "grievance/ask_description"),  # two UCS-2 segments, the Urdu prompt's budget
    ],
)
def test_both_when_they_fit(renderer, language, question):
    text = answer(renderer, question, language)
    both = (
        alone(renderer, "language/changed", language) + "\n" + alone(renderer, question, language)
    )
    assert text == both
    assert measure(text).segments <= sms_budget(question, language)


@pytest.mark.parametrize(
    ("language", "question"),
    [
        ("en", "grievance/ask_category"),  # 186 characters: two segments, one allowed
        ("ur", "grievance/ask_category"),  # three UCS-2 segments, two allowed
        ("sd", "grievance/ask_cnic"),
    ],
)
def test_the_question_alone_when_both_would_go_over(renderer, language, question):
    text = answer(renderer, question, language)
    assert text == alone(renderer, question, language)
    assert measure(text).segments <= sms_budget(question, language)


def test_whatsapp_and_telegram_say_both(renderer):
    for channel in ("whatsapp", "telegram"):
        text = answer(renderer, "grievance/ask_category", "en", channel)
        assert text.startswith("Language set to English."), text
        assert "What is the complaint about?" in text, text


def test_a_spare_reply_alone_is_said(renderer):
    rendered = renderer.render([CHANGED], language="ur", channel="sms")
    assert rendered.text == alone(renderer, "language/changed", "ur")
