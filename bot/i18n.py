"""Languages: codes people type, detection from the text, and the gettext catalogs."""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from pathlib import Path

from babel.support import NullTranslations, Translations

from bot.dialogue.keywords import is_roman_urdu
from bot.formatting import LANGUAGES as LANGUAGES  # the one list, read from here too

#: What people type after LANG (and the language menu's numbers), to a language.
LANGUAGE_CODES: dict[str, str] = {
    "en": "en",
    "english": "en",
    "eng": "en",
    "angrezi": "en",
    "انگریزی": "en",
    "1": "en",
    "ur": "ur",
    "urdu": "ur",
    "اردو": "ur",
    "2": "ur",
    "ru": "ur_Latn",
    "roman": "ur_Latn",
    "romanurdu": "ur_Latn",
    "3": "ur_Latn",
    "sd": "sd",
    "sindhi": "sd",
    "سنڌي": "sd",
    "سندھی": "sd",
    "4": "sd",
    "ps": "ps",
    "pashto": "ps",
    "pushto": "ps",
    "پښتو": "ps",
    "پشتو": "ps",
    "5": "ps",
    "pa": "pa_Arab",
    "punjabi": "pa_Arab",
    "panjabi": "pa_Arab",
    "پنجابی": "pa_Arab",
    "6": "pa_Arab",
}

#: The code printed for each language in menus (`LANG RU`).
LANGUAGE_KEYWORD: dict[str, str] = {
    "en": "EN",
    "ur": "UR",
    "ur_Latn": "RU",
    "sd": "SD",
    "ps": "PS",
    "pa_Arab": "PA",
}

# Letters only Sindhi or only Pashto use; Shahmukhi Punjabi shares Urdu's letters, so Arabic
# script without them reads as Urdu (SPEC §2).
_SINDHI_LETTERS = frozenset("ڪٻڀٺٽٿڄڃڇڊڌڏڍڙڦڱڻ")
_PASHTO_LETTERS = frozenset("ټډړږښځڅڼۍې")

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"


def language_from_code(code: str) -> str | None:
    """The language for what someone typed after LANG (`UR`, `roman urdu`, `3`), or None."""
    key = re.sub(r"[\s_\-]+", "", code.casefold())
    return LANGUAGE_CODES.get(key)


def detect_language(text: str) -> str | None:
    """Guess the language from the letters of `text`; None when it has no letters."""
    arabic = latin = 0
    for char in text:
        if not char.isalpha():
            continue
        name = unicodedata.name(char, "")
        if name.startswith("ARABIC"):
            arabic += 1
        elif name.startswith("LATIN"):
            latin += 1
    if arabic == 0 and latin == 0:
        return None
    if arabic >= latin:
        letters = set(text)
        if letters & _SINDHI_LETTERS:
            return "sd"
        if letters & _PASHTO_LETTERS:
            return "ps"
        return "ur"
    return "ur_Latn" if is_roman_urdu(text) else "en"


@cache
def translations(language: str, locales_dir: Path = LOCALES_DIR) -> NullTranslations:
    """The compiled catalog of `language` (English falls back to the source strings)."""
    mo = locales_dir / language / "LC_MESSAGES" / "messages.mo"
    if not mo.exists():
        if language != "en":
            raise FileNotFoundError(f"no compiled catalog for {language}: run `make messages`")
        return NullTranslations()
    with mo.open("rb") as fp:
        return Translations(fp, domain="messages")
