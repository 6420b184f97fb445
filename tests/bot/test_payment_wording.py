"""Payment failure reasons in the person's language, within the schedule's SMS budget."""

from __future__ import annotations

import pytest

from bot.i18n import LANGUAGES
from bot.i18n_report import WORST_CASE_CONTEXT, sms_budget, tranche
from bot.segments import measure

#: The reasons the synthetic registry writes (api/registry/seed.py) beyond the report's own.
SEEDED_REASONS = [
    ("failed", "network outage at collection point"),
    ("withheld", "duplicate claim check"),
]
CHANNELS = ("sms", "whatsapp", "telegram")


def schedule(renderer, language: str, channel: str, status: str, reason: str) -> str:
    context = {**WORST_CASE_CONTEXT, "next": tranche("2026-Q4", status, reason=reason)}
    return renderer.render_text("payments/schedule", context, language=language, channel=channel)


@pytest.mark.parametrize(("status", "reason"), SEEDED_REASONS)
def test_every_seeded_reason_is_translated(renderer, status, reason):
    assert reason in schedule(renderer, "en", "sms", status, reason)
    for language in LANGUAGES:
        for channel in CHANNELS:
            text = schedule(renderer, language, channel, status, reason)
            assert language == "en" or reason not in text, (language, channel, text)


@pytest.mark.parametrize(("status", "reason"), SEEDED_REASONS)
def test_a_reason_written_as_a_code_reads_as_its_words(renderer, status, reason):
    code = reason.upper().replace(" ", "_")
    for language in LANGUAGES:
        words = schedule(renderer, language, "sms", status, reason)
        assert schedule(renderer, language, "sms", status, code) == words


def test_a_reason_the_registry_writes_in_its_own_words_is_shown_as_written(renderer):
    text = schedule(renderer, "ur", "sms", "withheld", "Tehsil office to confirm")
    assert "Tehsil office to confirm" in text


@pytest.mark.parametrize(("status", "reason"), SEEDED_REASONS)
def test_seeded_reasons_keep_the_schedule_budget(renderer, status, reason):
    for language in LANGUAGES:
        cost = measure(schedule(renderer, language, "sms", status, reason))
        assert cost.segments <= sms_budget("payments/schedule", language), language
