"""`rabta i18n report`: every SMS message in every language, its cost, and the budget it keeps."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest
import typer
from typer.testing import CliRunner

from bot import i18n_report
from bot.catalogs import load
from bot.channels import CHANNELS
from bot.dialogue.keywords import parse
from bot.formatting import format_date, format_date_range
from bot.i18n import LANGUAGES, translations
from bot.i18n_report import (
    NOT_SMS_FOLDERS,
    NOT_SMS_MESSAGES,
    SMS_MESSAGES,
    SMS_ONE_SEGMENT,
    SMS_TWO_SEGMENTS,
    WORST_CASE_CONTEXT,
    build_report,
    i18n_app,
    render_worst_case,
    sms_budget,
    worst_case_contexts,
)
from bot.render import TEMPLATES_DIR
from bot.segments import measure


@pytest.fixture(scope="module")
def rows() -> list[i18n_report.ReportRow]:
    return build_report(0.5)


def sms_templates() -> set[str]:
    """Every template that can be an SMS body: shared ones and `.sms` ones, by base name."""
    root = TEMPLATES_DIR / "messages"
    names = set()
    for path in root.rglob("*.j2"):
        stem = path.relative_to(root).as_posix()[: -len(".j2")]
        base, _, channel = stem.rpartition(".")
        if base and channel in CHANNELS:
            if channel != "sms":
                continue  # another channel's own wording
            stem = base
        if stem.rsplit("/", 1)[-1].startswith("_") or stem.startswith(NOT_SMS_FOLDERS):
            continue
        names.add(stem)
    return names - NOT_SMS_MESSAGES


def test_every_sms_template_has_a_budget():
    assert set(SMS_MESSAGES) == sms_templates()
    assert not set(SMS_ONE_SEGMENT) & set(SMS_TWO_SEGMENTS)
    assert len(SMS_MESSAGES) == len(set(SMS_MESSAGES))


def test_the_report_covers_every_sms_message_in_every_language(rows):
    assert [(r.language, r.message) for r in rows] == [
        (language, name) for language in LANGUAGES for name in SMS_MESSAGES
    ]


def test_rows_match_the_segment_calculator(rows):
    for row in rows:
        cost = measure(row.text)
        assert (row.encoding, row.characters, row.units, row.segments) == (
            cost.encoding,
            cost.characters,
            cost.units,
            cost.segments,
        )
        assert row.budget == sms_budget(row.message, row.language)
        assert row.cost_per_million == pytest.approx(row.segments * 0.5 * 1_000_000)


def test_every_row_is_within_budget(rows):
    over = [f"{r.language} {r.message}: {r.segments}/{r.budget} {r.text!r}" for r in rows]
    assert [line for line, r in zip(over, rows, strict=True) if not r.within_budget] == []


def test_budgets_follow_the_spec():
    assert sms_budget("help/menu", "en") == sms_budget("help/menu", "ur_Latn") == 1
    assert sms_budget("help/menu", "ur") == sms_budget("help/menu", "pa_Arab") == 2
    assert sms_budget("payments/schedule", "en") == 2
    assert sms_budget("payments/schedule", "sd") == 3
    assert sms_budget("grievance/status", "ps") == 3


def test_latin_rows_are_gsm7(rows):
    assert {r.encoding for r in rows if r.language in ("en", "ur_Latn")} == {"GSM-7"}


def test_the_worst_case_is_the_costliest_variant():
    renderer = i18n_report.default_renderer()
    for language in LANGUAGES:
        worst = measure(render_worst_case(renderer, "payments/schedule", language))
        for context in worst_case_contexts("payments/schedule", language):
            text = renderer.render_text(
                "payments/schedule", context, language=language, channel="sms"
            )
            assert (measure(text).segments, measure(text).units) <= (worst.segments, worst.units)


def test_the_schedule_sms_keeps_what_people_need():
    renderer = i18n_report.default_renderer()
    context = {**WORST_CASE_CONTEXT, "next": i18n_report.tranche("2026-Q4", "ready")}
    text = renderer.render_text("payments/schedule", context, language="en", channel="sms")
    assert text.splitlines() == [
        "35202-*******-1 Taleemi Wazaif 2026-Q4: Rs 999,999, ready to collect",
        "28 Sept - 31 Dec 2026",
        # the registry's 120 characters, cut to the 60 units the template is budgeted for
        "Government Girls Higher Secondary School No. 2, Muzaffarga.. (retailer)",
        "Before: 2026-Q3 collected",
    ]
    # a held-up payment gives its reason instead of the history
    text = renderer.render_text(
        "payments/schedule", WORST_CASE_CONTEXT, language="en", channel="sms"
    )
    assert "withheld (biometric verification failed)" in text and "Before" not in text
    # the mode is left out when the place's name says it
    bank = dataclasses.replace(
        i18n_report.tranche("2026-Q4", "scheduled", mode="bank"), place="HBL Bank, Mall Road"
    )
    text = renderer.render_text(
        "payments/schedule", {**context, "next": bank}, language="en", channel="sms"
    )
    assert "HBL Bank, Mall Road\n" in text and "bank account" not in text


def rabta() -> typer.Typer:
    """A `rabta` command with `i18n` mounted as api/cli.py mounts it."""
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """rabta"""

    app.add_typer(i18n_app, name="i18n")
    return app


def test_the_cli_prints_the_table_and_exits_0(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(rabta(), ["i18n", "report", "--price", "0.5"])
    assert result.exit_code == 0, result.output
    for header in ("language", "message", "encoding", "segments", "budget", "within budget"):
        assert header in result.output
    assert "payments/schedule" in result.output and "pa_Arab" in result.output
    assert "✓" in result.output and "✗" not in result.output
    assert f"{len(LANGUAGES) * len(SMS_MESSAGES)} rows" in result.output
    assert "PKR 1,000,000" in result.output  # two segments at Rs 0.50, a million times


def test_the_cli_exits_1_when_a_row_is_over_budget(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(i18n_report, "sms_budget", lambda name, language: 0)
    result = CliRunner().invoke(rabta(), ["i18n", "report", "--price", "0.02", "--currency", "USD"])
    assert result.exit_code == 1
    assert "over budget" in result.output and "✗" in result.output


# -- the compact collection window the schedule uses ---------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (dt.date(2026, 9, 28), dt.date(2026, 12, 31), "28 Sept - 31 Dec 2026"),
        (dt.date(2026, 12, 5), dt.date(2026, 12, 31), "5-31 Dec 2026"),
        (dt.date(2026, 12, 15), dt.date(2027, 1, 15), "15 Dec 2026 - 15 Jan 2027"),
        (dt.date(2026, 12, 15), dt.date(2026, 12, 15), "15 Dec 2026"),
        (dt.date(2026, 12, 31), dt.date(2026, 12, 5), "5-31 Dec 2026"),
    ],
)
def test_date_range_in_english(start, end, expected):
    assert format_date_range(start, end, "en") == expected
    assert format_date((start, end), "en") == expected


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("ur", "28 ستمبر – 31 دسمبر 2026"),
        ("ur_Latn", "28 Sept - 31 Dec 2026"),
        ("sd", "٢٨ سيپٽمبر – ٣١ ڊسمبر ٢٠٢٦"),
        ("ps", "۲۸ سېپتمبر – ۳۱ دسمبر ۲۰۲۶"),
        ("pa_Arab", "۲۸ ستمبر – ۳۱ دسمبر ۲۰۲۶"),
    ],
)
def test_date_range_per_language(language, expected):
    text = format_date_range(dt.date(2026, 9, 28), dt.date(2026, 12, 31), language)
    assert text == expected
    if language == "ur_Latn":
        assert measure(text).encoding == "GSM-7"


# -- the dates each language writes longest -----------------------------------------------------

#: A leap year the report does not look in: its figures hold whatever the year.
ANY_YEAR = 2032


def days_of(year: int) -> list[dt.date]:
    first = dt.date(year, 1, 1)
    return [first + dt.timedelta(days=n) for n in range((dt.date(year + 1, 1, 1) - first).days)]


def sms_units(renderer, name: str, context, language: str) -> int:
    return measure(renderer.render_text(name, context, language=language, channel="sms")).units


def costliest(renderer, name: str, language: str):
    """The data that costs most in `name` besides its dates, as the report's variants try it."""
    return max(
        worst_case_contexts(name), key=lambda context: sms_units(renderer, name, context, language)
    )


def due_on(context, day: dt.date):
    """`context` with its complaint due on `day`, at the hour the report's is."""
    due = dt.datetime.combine(day, context["grievance"].due_at.timetz())
    return {
        **context,
        "due": day,
        "grievance": dataclasses.replace(context["grievance"], due_at=due),
    }


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", ["grievance/filed", "grievance/status"])
def test_no_day_of_the_year_makes_a_dated_sms_longer_than_its_row(rows, language, name):
    """Sindhi and Pashto write September two letters longer than December, Urdu and Punjabi
    July and October one longer: the row is what the message costs on the day it is longest."""
    renderer = i18n_report.default_renderer()
    (row,) = [r for r in rows if (r.language, r.message) == (language, name)]
    context = costliest(renderer, name, language)
    longer = {
        day.isoformat(): units
        for day in days_of(ANY_YEAR)
        if (units := sms_units(renderer, name, due_on(context, day), language)) > row.units
    }
    assert longer == {}, f"{language} {name}: the report says {row.units} units"


def windows(year: int) -> list[tuple[dt.date, dt.date]]:
    """From every day of `year` to the 28th of every month after it, that year and the next."""
    ends = [dt.date(y, month, 28) for y in (year, year + 1) for month in range(1, 13)]
    return [(start, end) for start in days_of(year) for end in ends if end > start]


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_collection_window_makes_the_schedule_longer_than_its_row(rows, language):
    """A window within a month, within a year or into the next year: the longest one the
    language writes costs no more than the report's row for the schedule."""
    renderer = i18n_report.default_renderer()
    (row,) = [r for r in rows if (r.language, r.message) == (language, "payments/schedule")]
    start, end = max(windows(ANY_YEAR), key=lambda w: measure(format_date(w, language)).units)
    context = costliest(renderer, "payments/schedule", language)
    window = dataclasses.replace(context["next"], window_start=start, window_end=end)
    units = sms_units(renderer, "payments/schedule", {**context, "next": window}, language)
    assert units <= row.units, f"{format_date((start, end), language)}: {units} > {row.units}"


# -- what the catalogs must keep in every language ----------------------------------------------

KEYWORDS_TO_TYPE = ("PAY", "COMPLAINT", "TRACK", "LANG", "HELP", "STOP", "START")


def test_keywords_people_type_stay_in_latin_capitals():
    """A keyword in an English message is, in every translation, a Latin-capital word that the
    keyword parser reads as the same command (Roman Urdu may use MADAD, SHIKAYAT, ...)."""
    for language in LANGUAGES:
        for message in load(language):
            if not message.id:
                continue
            ids = message.id if isinstance(message.id, tuple) else (message.id,)
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            for keyword in KEYWORDS_TO_TYPE:
                if not re.search(rf"\b{keyword}\b", ids[0]):
                    continue
                intent = parse(keyword).intent
                for string in strings:
                    capitals = re.findall(r"\b[A-Z]{3,}\b", string)
                    assert any(parse(word).intent is intent for word in capitals), (
                        f"{language}: {keyword} missing in {string!r}"
                    )


def test_punjabi_treats_zero_as_singular():
    msgid = "Too many requests from this phone. Please try again after %(count)s minute."
    plural = "Too many requests from this phone. Please try again after %(count)s minutes."
    punjabi = translations("pa_Arab")
    assert punjabi.ngettext(msgid, plural, 0) == punjabi.ngettext(msgid, plural, 1)
    assert punjabi.ngettext(msgid, plural, 0) != punjabi.ngettext(msgid, plural, 2)
    urdu_latin = translations("ur_Latn")
    assert urdu_latin.ngettext(msgid, plural, 0) == urdu_latin.ngettext(msgid, plural, 2)
