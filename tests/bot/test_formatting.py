"""Locale formatting for the six languages: dates, PKR amounts, numbers, digits, bidi, script."""

from __future__ import annotations

from datetime import date

import pytest

from bot.formatting import (
    BABEL_LOCALES,
    LANGUAGES,
    NUMBERING_SYSTEMS,
    RTL_LANGUAGES,
    babel_locale,
    canonical_language,
    detect_script,
    format_amount,
    format_date,
    format_number,
    is_rtl,
    ltr,
    native_digits,
)
from bot.segments import measure

DAY = date(2026, 12, 15)
ARAB = "٠١٢٣٤٥٦٧٨٩"  # U+0660..U+0669, Sindhi
ARABEXT = "۰۱۲۳۴۵۶۷۸۹"  # U+06F0..U+06F9, Pashto and Punjabi
LRI, PDI = "\u2066", "\u2069"

# lang: (date, amount 13500, amount 9999999, number 9999999)
EXPECTED = {
    "en": ("15 Dec 2026", "Rs 13,500", "Rs 9,999,999", "9,999,999"),
    "ur_Latn": ("15 Dec 2026", "Rs 13,500", "Rs 9,999,999", "9,999,999"),
    "ur": ("15 دسمبر 2026", "Rs 13,500", "Rs 9,999,999", "9,999,999"),
    "sd": ("١٥ ڊسمبر ٢٠٢٦", "Rs ١٣٬٥٠٠", "Rs ٩٬٩٩٩٬٩٩٩", "٩٬٩٩٩٬٩٩٩"),
    "ps": ("۱۵ دسمبر ۲۰۲۶", "PKR ۱۳٬۵۰۰", "PKR ۹٬۹۹۹٬۹۹۹", "۹٬۹۹۹٬۹۹۹"),
    "pa_Arab": ("۱۵ دسمبر ۲۰۲۶", "ر ۱۳٬۵۰۰", "ر ۹٬۹۹۹٬۹۹۹", "۹٬۹۹۹٬۹۹۹"),
}


def test_expected_covers_every_language() -> None:
    assert set(EXPECTED) == set(LANGUAGES)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_date(lang: str) -> None:
    assert format_date(DAY, lang) == EXPECTED[lang][0]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_amounts(lang: str) -> None:
    assert format_amount(13500, lang) == EXPECTED[lang][1]
    assert format_amount(9_999_999, lang) == EXPECTED[lang][2]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_number(lang: str) -> None:
    assert format_number(9_999_999, lang) == EXPECTED[lang][3]


@pytest.mark.parametrize("lang", ["en", "ur_Latn"])
def test_latin_output_stays_gsm7(lang: str) -> None:
    text = f"{format_date(DAY, lang)} {format_amount(13500, lang)} {format_number(12345, lang)}"
    assert measure(text).encoding == "GSM-7"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_no_break_spaces(lang: str) -> None:
    out = format_date(DAY, lang) + format_amount(13500, lang) + format_number(1234, lang)
    assert "\u00a0" not in out and "\u202f" not in out


def test_babel_locales() -> None:
    assert {lang: str(babel_locale(lang)) for lang in LANGUAGES} == dict(BABEL_LOCALES)
    assert babel_locale("ur_Latn").text_direction == "ltr"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_digit_table_follows_cldr_default(lang: str) -> None:
    # If this fails after a deliberate change to NUMBERING_SYSTEMS, update this test.
    assert NUMBERING_SYSTEMS[lang] == babel_locale(lang).default_numbering_system


def test_digits_per_locale() -> None:
    assert set(format_number(1234567890, "sd")) <= set(ARAB + "٬")
    for lang in ("ps", "pa_Arab"):
        assert set(format_number(1234567890, lang)) <= set(ARABEXT + "٬")
    for lang in ("en", "ur", "ur_Latn"):
        assert format_number(1234567890, lang) == "1,234,567,890"


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        ("CNIC 35202-1234567-1", "sd", "CNIC ٣٥٢٠٢-١٢٣٤٥٦٧-١"),
        ("0300 1234567", "ps", "۰۳۰۰ ۱۲۳۴۵۶۷"),
        ("0300", "pa_Arab", "۰۳۰۰"),
        ("0300", "ur", "0300"),
        ("۱۲۳ ١٢٣ 123", "en", "123 123 123"),
        ("۱۲۳", "sd", "١٢٣"),
    ],
)
def test_native_digits(text: str, lang: str, expected: str) -> None:
    assert native_digits(text, lang) == expected


def test_rtl_languages_match_babel() -> None:
    assert frozenset(lang for lang in LANGUAGES if is_rtl(lang)) == RTL_LANGUAGES
    for lang in LANGUAGES:
        assert is_rtl(lang) == (babel_locale(lang).text_direction == "rtl")


@pytest.mark.parametrize("lang", sorted(RTL_LANGUAGES))
def test_ltr_wraps_runs_in_rtl_languages(lang: str) -> None:
    assert ltr("35202-1234567-1", lang) == f"{LRI}35202-1234567-1{PDI}"
    assert ltr("", lang) == ""


@pytest.mark.parametrize("lang", ["en", "ur_Latn"])
def test_ltr_is_identity_in_ltr_languages(lang: str) -> None:
    assert ltr("35202-1234567-1", lang) == "35202-1234567-1"


@pytest.mark.parametrize(
    ("given", "canonical"),
    [("ur-Latn", "ur_Latn"), ("UR_LATN", "ur_Latn"), ("pa-Arab", "pa_Arab"), ("SD", "sd")],
)
def test_canonical_language(given: str, canonical: str) -> None:
    assert canonical_language(given) == canonical
    assert babel_locale(given) == babel_locale(canonical)


@pytest.mark.parametrize("bad", ["pa", "fr", "", "ur_Arab"])
def test_unknown_language_is_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        format_number(1, bad)


@pytest.mark.parametrize(
    ("text", "script"),
    [
        ("میری قسط کب آئے گی؟", "arabic"),  # Urdu
        ("منهنجي قسط ڪڏهن ايندي؟", "arabic"),  # Sindhi
        ("زما قسط کله راځي؟", "arabic"),  # Pashto
        ("When is my payment?", "latin"),
        ("Meri qist kab aaye gi?", "latin"),  # Roman Urdu
        ("Café Ç", "latin"),
        ("35202-1234567-1", "none"),
        ("۳۵۲۰۲۱۲۳۴۵۶۷۱", "none"),  # Urdu digits are not letters
        ("😀👍", "none"),
        ("", "none"),
        ("?!.", "none"),
        ("BISP قسط کب آئے گی", "arabic"),  # 4 Latin vs 11 Arabic letters
        ("My qist ka status? قسط", "latin"),  # 15 Latin vs 3 Arabic letters
        ("ab قس", "arabic"),  # a tie goes to Arabic
        ("Ελλάδα", "none"),  # other scripts are not counted
    ],
)
def test_detect_script(text: str, script: str) -> None:
    assert detect_script(text) == script


@pytest.mark.parametrize(
    ("lang", "three", "fifteen"),
    [
        ("en", "3", "15"),
        ("ur", "3", "15"),
        ("ur_Latn", "3", "15"),
        ("sd", "٣", "١٥"),
        ("ps", "۳", "۱۵"),
        ("pa_Arab", "۳", "۱۵"),
    ],
)
def test_counts_in_messages_use_the_languages_digits(
    renderer, lang: str, three: str, fifteen: str
) -> None:
    """A count inside a translated sentence ("try 3 more times") is written like the dates and
    amounts of the same language; the plural form is still chosen from the number."""
    tries = renderer.render_text("verify/wrong", {"tries_left": 3}, language=lang, channel="sms")
    wait = renderer.render_text(
        "errors/rate_limited", {"minutes": 15}, language=lang, channel="sms"
    )
    assert three in tries and fifteen in wait
    if three != "3":
        assert "3" not in tries and "15" not in wait
    one = renderer.render_text("verify/wrong", {"tries_left": 1}, language="en", channel="sms")
    assert "1 more time." in one and "3 more times." in renderer.render_text(
        "verify/wrong", {"tries_left": 3}, language="en", channel="sms"
    )
