"""Help lists every keyword of SPEC §6; Telegram's complaint list has no segments to save."""

from __future__ import annotations

import dataclasses

import pytest

from api.grievances.schemas import Category, Status
from bot.i18n import LANGUAGES
from bot.i18n_report import grievance

FIVE = [
    grievance(f"G-{n}K3M9Q", category=Category.OTHER, status=Status.OPEN, note=None)
    for n in range(2, 7)
]


@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
def test_help_names_stop_and_start(renderer, channel):
    for language in LANGUAGES:
        text = renderer.render_text("help/menu", {}, language=language, channel=channel)
        assert "STOP" in text and "START" in text, (language, text)


def list_text(renderer, language: str, grievances: list, total: int) -> str:
    context = {"cnic": "35202-*******-2", "grievances": grievances, "total": total}
    return renderer.render_text("grievance/list", context, language=language, channel="telegram")


def test_telegram_lists_every_complaint_it_is_given_one_a_line(renderer):
    text = list_text(renderer, "en", FIVE, 5)
    assert [line.split()[0] for line in text.splitlines()[1:6]] == [g.ticket_id for g in FIVE]
    assert "more" not in text
    # TRACK wants a ticket, not a place in the list ("TRACK 4" finds nothing).
    assert "a number" not in text and "TRACK G-2K3M9Q" in text


def test_telegram_says_how_many_complaints_are_not_shown(renderer):
    assert "And 2 more." in list_text(renderer, "en", FIVE[:3], 5)
    for language in LANGUAGES:
        shown = list_text(renderer, language, FIVE[:3], 5)
        assert all(g.ticket_id in shown for g in FIVE[:3]), language
        assert len(shown.splitlines()) == 6, (language, shown)  # heading, 3, more, TRACK


def test_the_statuses_shown_are_the_grievances_own(renderer):
    resolved = [dataclasses.replace(FIVE[0], status=Status.RESOLVED)]
    assert "resolved" in list_text(renderer, "en", resolved, 1)


def test_the_sms_complaint_list_has_no_punctuation_of_another_script(renderer):
    """The SMS list puts one complaint on each line: an Urdu or Punjabi reader got a Latin `;`
    between them and a Latin `.` after the last, written by the template in every language."""
    for language in LANGUAGES:
        text = renderer.render_text(
            "grievance/list",
            {"cnic": "35202-*******-2", "grievances": FIVE[:2], "total": 2},
            language=language,
            channel="sms",
        )
        lines = text.splitlines()
        assert [line.split()[0].strip("\u2066\u2069\u200e") for line in lines[1:3]] == [
            "G-2K3M9Q",
            "G-3K3M9Q",
        ], (language, text)
        if language not in ("en", "ur_Latn"):
            assert ";" not in text and not lines[2].endswith("."), (language, text)
