"""Locale-aware dates, numbers and PKR amounts (Babel/CLDR) for Rabta's six languages.

Digits follow each locale's CLDR default numbering system (``NUMBERING_SYSTEMS``): Babel
formats separators for that system but always emits ASCII digits, so they are translated here.
Spaces in the output are plain U+0020, never Babel's NO-BREAK SPACE, so English and Roman Urdu
replies stay GSM-7. Nothing is wrapped in bidi isolates: templates call ``ltr()`` (CNICs, codes,
ticket ids) or ``isolate()`` (amounts, free text) where needed.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from functools import cache
from types import MappingProxyType
from typing import Final, Literal

import babel
from babel.dates import format_date as _babel_format_date
from babel.numbers import format_currency, format_decimal

#: Rabta's six languages (SPEC §2), as gettext/Babel locale identifiers: the one list every
#: other part reads (the catalogs, the language menus, settings, the agent console's callers).
LANGUAGES: tuple[str, ...] = ("en", "ur", "ur_Latn", "sd", "ps", "pa_Arab")
RTL_LANGUAGES: frozenset[str] = frozenset({"ur", "sd", "ps", "pa_Arab"})

# Roman Urdu has no CLDR locale (Locale.parse("ur_Latn") silently falls back to RTL `ur`); it
# is Urdu written the way Pakistanis write English, so it borrows en_PK conventions.
BABEL_LOCALES: Final = MappingProxyType(
    {
        "en": "en_PK",
        "ur": "ur_PK",
        "ur_Latn": "en_PK",
        "sd": "sd_Arab_PK",
        "ps": "ps_PK",
        "pa_Arab": "pa_Arab_PK",
    }
)

# The one table to change for digits: CLDR 47 defaults. `ur` is latn (Urdu SMS in Pakistan use
# western digits); setting it to "arabext" would switch both digits and separators.
NUMBERING_SYSTEMS: Final = MappingProxyType(
    {
        "en": "latn",
        "ur": "latn",
        "ur_Latn": "latn",
        "sd": "arab",
        "ps": "arabext",
        "pa_Arab": "arabext",
    }
)

DIGITS: Final = MappingProxyType(
    {
        "latn": "0123456789",
        "arab": "".join(chr(0x0660 + i) for i in range(10)),  # ٠١٢٣٤٥٦٧٨٩
        "arabext": "".join(chr(0x06F0 + i) for i in range(10)),  # ۰۱۲۳۴۵۶۷۸۹
    }
)

DATE_PATTERN: Final = "d MMM y"
#: A collection window's start, shortened when the end shares its year or its month.
_RANGE_START_PATTERNS: Final = MappingProxyType({"year": "d MMM", "month": "d"})
#: Between the ends of a range, by direction: an ASCII hyphen keeps English and Roman Urdu GSM-7
#: (an en dash would make the whole SMS UCS-2); days of one month need no spaces (``5-31``).
RANGE_DASH: Final = MappingProxyType({"ltr": " - ", "rtl": " – "})
DAYS_DASH: Final = MappingProxyType({"ltr": "-", "rtl": "–"})

LRI: Final = "\u2066"
FSI: Final = "\u2068"
PDI: Final = "\u2069"

_ALL_DIGITS: Final = "".join(DIGITS.values())
_TO_DIGITS: Final = {
    system: str.maketrans(_ALL_DIGITS, digits * len(DIGITS)) for system, digits in DIGITS.items()
}
_CANONICAL: Final = {lang.lower(): lang for lang in LANGUAGES}


def canonical_language(lang: str) -> str:
    """Return the canonical code for ``lang``; accepts BCP 47 hyphens (``ur-Latn``), any case."""
    try:
        return _CANONICAL[lang.replace("-", "_").lower()]
    except KeyError:
        raise ValueError(f"unsupported language {lang!r}; expected one of {LANGUAGES}") from None


@cache
def babel_locale(lang: str) -> babel.Locale:
    """Return the Babel locale whose conventions ``lang`` is formatted with."""
    return babel.Locale.parse(BABEL_LOCALES[canonical_language(lang)])


def is_rtl(lang: str) -> bool:
    """Return True when ``lang`` is written right to left."""
    return canonical_language(lang) in RTL_LANGUAGES


def _numbering_system(lang: str) -> str:
    return NUMBERING_SYSTEMS[canonical_language(lang)]


def native_digits(text: str, lang: str) -> str:
    """Rewrite every ASCII, Arabic-Indic or Extended Arabic-Indic digit in ``lang``'s digits."""
    return text.translate(_TO_DIGITS[_numbering_system(lang)])


def _plain_spaces(text: str) -> str:
    return text.replace("\u00a0", " ").replace("\u202f", " ")


def _format_pattern(d: date, pattern: str, lang: str) -> str:
    text = _babel_format_date(d, pattern, locale=babel_locale(lang))
    return native_digits(_plain_spaces(text), lang)


def format_date(d: date | tuple[date, date], lang: str) -> str:
    """Format a date as day, abbreviated month name and year, e.g. ``15 Dec 2026``.

    A ``(start, end)`` pair is a collection window, formatted by ``format_date_range``, so
    templates write ``(start, end)|date`` with the one ``date`` filter.
    """
    if isinstance(d, tuple):
        return format_date_range(*d, lang)
    # One day-first pattern for all six: CLDR's medium formats differ (sd/ps put the year first,
    # en_PK uses "15-Dec-2026"), and a numeric date is ambiguous to a reader.
    return _format_pattern(d, DATE_PATTERN, lang)


def format_date_range(start: date, end: date, lang: str) -> str:
    """Format a window of days as compactly as reads unambiguously, in ``format_date``'s style.

    ``5-31 Dec 2026``, ``28 Sept - 31 Dec 2026``, ``15 Dec 2026 - 15 Jan 2027``; one day is
    ``15 Dec 2026``. Month names, digits and spaces are as ``format_date`` gives them; RTL
    languages join the ends with an en dash, the others with an ASCII hyphen (GSM-7).

    CLDR's interval formats (``babel.dates.format_interval``) are not used: en_PK's are
    month-first (``Sept 28 – Dec 31, 2026``), sd/ps/pa_Arab's year-first, unlike every other
    date Rabta sends, and their en dash and thin spaces would turn an English SMS into UCS-2.
    """
    if end < start:
        start, end = end, start
    last = format_date(end, lang)
    if start == end:
        return last
    side = "rtl" if is_rtl(lang) else "ltr"
    if (start.year, start.month) == (end.year, end.month):
        first = _format_pattern(start, _RANGE_START_PATTERNS["month"], lang)
        return f"{first}{DAYS_DASH[side]}{last}"
    if start.year == end.year:
        first = _format_pattern(start, _RANGE_START_PATTERNS["year"], lang)
    else:
        first = format_date(start, lang)
    return f"{first}{RANGE_DASH[side]}{last}"


@cache
def _amount_pattern(lang: str) -> str:
    pattern: str = babel_locale(lang).currency_formats["standard"].pattern
    pattern = _plain_spaces(re.sub(r"\.0+", "", pattern))  # PKR cash amounts have 0 decimals
    # CLDR currencySpacing (which Babel does not apply) puts a space between a letter symbol
    # ("Rs", "PKR", "ر") and the digits; every PKR symbol in these locales ends in a letter.
    pattern = re.sub(r"¤(?=[#0])", "¤ ", pattern)
    return re.sub(r"(?<=[#0])¤", " ¤", pattern)


def format_amount(pkr: int, lang: str) -> str:
    """Format a whole-rupee PKR amount with the locale's symbol, e.g. ``Rs 13,500``."""
    text = format_currency(
        pkr,
        "PKR",
        format=_amount_pattern(canonical_language(lang)),
        locale=babel_locale(lang),
        currency_digits=False,
        numbering_system=_numbering_system(lang),
    )
    return native_digits(_plain_spaces(text), lang)


def format_number(n: int, lang: str) -> str:
    """Format an integer with the locale's grouping separator and digits."""
    text = format_decimal(n, locale=babel_locale(lang), numbering_system=_numbering_system(lang))
    return native_digits(_plain_spaces(text), lang)


def ltr(text: str, lang: str) -> str:
    """Isolate an LTR run (CNIC, phone, ticket id) in LRI…PDI for RTL languages only."""
    if not text or not is_rtl(lang):
        return text
    return f"{LRI}{text}{PDI}"


def isolate(text: str, lang: str) -> str:
    """Isolate text of either direction in FSI…PDI for RTL languages only.

    For what is not always left to right: a place, a complaint's words or an agent's note may be
    written in English or in Urdu, and a Punjabi amount starts with its Arabic-script symbol
    (``ر ۱۳٬۵۰۰``). The text takes the direction of its own first letter, and its punctuation
    (a closing ``..``, ``No. 2,``) stays at its end instead of moving to the other side.
    """
    if not text or not is_rtl(lang):
        return text
    return f"{FSI}{text}{PDI}"


def detect_script(text: str) -> Literal["arabic", "latin", "none"]:
    """Return the script most of the letters in ``text`` are written in (ties go to Arabic)."""
    arabic = latin = 0
    for ch in text:
        if not ch.isalpha():  # digits, punctuation, marks and emoji are not letters
            continue
        if ch.isascii():
            latin += 1
            continue
        name = unicodedata.name(ch, "")
        if name.startswith("ARABIC"):
            arabic += 1
        elif name.startswith("LATIN"):
            latin += 1
    if arabic == latin == 0:
        return "none"
    # A tie goes to Arabic: Latin letters in an Arabic-script message are usually a code or
    # acronym (BISP, CNIC), and Arabic text is UCS-2 whatever language the reply is in.
    return "arabic" if arabic >= latin else "latin"
