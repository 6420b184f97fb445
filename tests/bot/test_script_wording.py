"""What an Arabic-script reader sees, in every reply on SMS, WhatsApp and Telegram: the language's
own digits and punctuation, and text of the other direction set apart so that it reads in order.

USSD screens have their own tests (tests/ussd)."""

from __future__ import annotations

import re
from functools import cache

import pytest

from bot.channels.sms import PLACE_UNITS
from bot.formatting import DIGITS, NUMBERING_SYSTEMS, RTL_LANGUAGES
from bot.i18n import LANGUAGES
from bot.i18n_report import NOTE_LONG, PLACE_120, tranche, worst_case_contexts
from bot.segments import cut_to_units
from tests.bot.test_dialogue import all_templates

CHANNELS = ("sms", "whatsapp", "telegram")
LRI, FSI, PDI = "\u2066", "\u2068", "\u2069"
#: An isolate and what it holds: a CNIC, ticket id, amount, or someone's own words.
_ISOLATED = re.compile(f"[{LRI}{FSI}][^{PDI}]*{PDI}")
_ARABIC_LETTER = re.compile(r"[\u0620-\u064a\u066e-\u06d3\u06d5\u06fa-\u06ff]")


@cache
def _names() -> tuple[str, ...]:
    return tuple(
        name
        for name in all_templates()
        if not name.startswith("ussd/") and not name.rsplit("/", 1)[-1].startswith("_")
    )


def _renderings(renderer, language: str):
    for channel in CHANNELS:
        for name in _names():
            seen: set[str] = set()
            for context in worst_case_contexts(name):
                text = renderer.render_text(name, context, language=language, channel=channel)
                if text not in seen:
                    seen.add(text)
                    yield channel, name, text


def _outside_isolates(text: str) -> str:
    return _ISOLATED.sub(" ", text)


@pytest.mark.parametrize("language", LANGUAGES)
def test_digits_outside_isolates_are_the_languages_own(renderer, language):
    """Sindhi, Pashto and Punjabi replies wrote "13 digits", "30 days" and the menu's "1 ... 6"
    in ASCII next to counts, dates and amounts in their own digits ("6-digit code ... ٥ منٽن").
    CNICs, codes and ticket ids stay as printed on the card and typed, inside their isolates."""
    own = DIGITS[NUMBERING_SYSTEMS[language]]
    others = "".join(sorted(set("".join(DIGITS.values())) - set(own)))
    for channel, name, text in _renderings(renderer, language):
        stray = re.findall(f"[{others}]+", _outside_isolates(text))
        assert not stray, (language, channel, name, stray, text)


@pytest.mark.parametrize("language", ["ur", "pa_Arab"])
def test_no_latin_sentence_punctuation_in_urdu_and_punjabi(renderer, language):
    """Urdu and Shahmukhi Punjabi end a sentence with ۔ and separate with ، ؛ ؟. A place name or an
    agent's note in English keeps its own `.` and `,`, inside its isolate. (Sindhi and Pashto
    write the Latin full stop themselves.)"""
    for channel, name, text in _renderings(renderer, language):
        outside = _outside_isolates(text)
        stray = re.findall(r"[A-Za-z0-9 ]?[.,;?](?![.])", outside)
        assert not stray, (language, channel, name, stray, text)


@pytest.mark.parametrize("language", sorted(RTL_LANGUAGES))
def test_no_arabic_script_is_forced_left_to_right(renderer, language):
    """An LTR isolate is for CNICs, codes and ticket ids. Punjabi's amount starts with its symbol
    `ر`: isolated left to right, it showed after the number to a reader reading right to left."""
    for channel, name, text in _renderings(renderer, language):
        for run in re.findall(f"{LRI}[^{PDI}]*{PDI}", text):
            assert not _ARABIC_LETTER.search(run), (language, channel, name, run, text)


@pytest.mark.parametrize("language", sorted(RTL_LANGUAGES))
def test_free_text_is_isolated_in_right_to_left_replies(renderer, language):
    """A place, a complaint's words and an agent's note are whatever someone typed, in English or
    Urdu: set in an RTL sentence as they are, their trailing `..` or `,` moved to the wrong end."""
    description = "Retailer took Rs 2,000 from my payment.."
    cases = {
        "grievance/confirm": ({"category": "other", "description": description}, description),
        "grievance/update": (
            {
                "ticket": "G-7K3M9Q",
                "cnic": "35202-*******-1",
                "status": "resolved",
                "note": NOTE_LONG,
            },
            "..",
        ),
        "payments/schedule": (
            {"cnic": "35202-*******-1", "next": tranche("2026-Q4", "scheduled"), "recent": []},
            PLACE_120,
        ),
    }
    for name, (context, whole) in cases.items():
        for channel in ("sms", "whatsapp") if name == "payments/schedule" else ("sms",):
            expected = whole
            if name == "payments/schedule" and channel == "sms":
                expected = cut_to_units(whole, PLACE_UNITS)  # cut to fit, its `..` set apart too
            text = renderer.render_text(name, context, language=language, channel=channel)
            isolated = [run for run in re.findall(f"{FSI}([^{PDI}]*){PDI}", text)]
            assert any(expected in run for run in isolated), (language, channel, name, text)
