"""Languages: codes people type, detection from the text, and the gettext catalogs."""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from pathlib import Path

from babel.support import NullTranslations, Translations

from api.grievances.ticket import normalise_ticket_id
from bot.dialogue.keywords import KEYWORDS, fold, is_roman_urdu, keyword_language
from bot.formatting import LANGUAGES as LANGUAGES  # the one list, read from here too

#: What people type after LANG (and the language menu's numbers), to a language: the codes,
#: and each language's name as every language's menu writes it (`SD سندهي` in Pashto's,
#: `SD سنڌي` in Sindhi's). Looked up folded as keywords are (`fold`), so `پنجابي`, `سندهی` and
#: `اُردو` are found too.
LANGUAGE_CODES: dict[str, str] = {
    "en": "en",
    "english": "en",
    "eng": "en",
    "angrezi": "en",
    "انگریزی": "en",
    "انگلش": "en",
    "انګرېزي": "en",  # ps
    "انګلیسي": "en",  # ps
    "1": "en",
    "ur": "ur",
    "urdu": "ur",
    "اردو": "ur",
    "2": "ur",
    "ru": "ur_Latn",
    "roman": "ur_Latn",
    "romanurdu": "ur_Latn",
    "رومن": "ur_Latn",
    "رومناردو": "ur_Latn",
    "3": "ur_Latn",
    "sd": "sd",
    "sindhi": "sd",
    "سنڌي": "sd",
    "سندھی": "sd",
    "سندی": "sd",  # as typed without Sindhi's ڌ
    "4": "sd",
    "ps": "ps",
    "pashto": "ps",
    "pushto": "ps",
    "pakhto": "ps",
    "پښتو": "ps",
    "پشتو": "ps",
    "پختو": "ps",
    "5": "ps",
    "pa": "pa_Arab",
    "punjabi": "pa_Arab",
    "panjabi": "pa_Arab",
    "پنجابی": "pa_Arab",
    "6": "pa_Arab",
}
_BY_NAME: dict[str, str] = {re.sub(r"[\s_\-]+", "", fold(k)): v for k, v in LANGUAGE_CODES.items()}

#: The code printed for each language in menus (`LANG RU`).
LANGUAGE_KEYWORD: dict[str, str] = {
    "en": "EN",
    "ur": "UR",
    "ur_Latn": "RU",
    "sd": "SD",
    "ps": "PS",
    "pa_Arab": "PA",
}

# Letters only Sindhi or only Pashto use (with Sindhi's sign for ۾ "in"); Shahmukhi Punjabi
# shares Urdu's letters, so Arabic script without them reads as Urdu (SPEC §2), unless it
# starts with a keyword only Sindhi or only Pashto writes (`ادائگي`, `مرسته`).
_SINDHI_LETTERS = frozenset("ڪٻڀٺٽٿڄڃڇڊڌڏڍڙڦڱڳڻ۾")
_PASHTO_LETTERS = frozenset("ټډړږښځڅڼۍېګ")
#: Everyday words only Sindhi or only Pashto writes, in letters Urdu has too ("مون کي مدد
#: گهرجي", "زه مرسته غواړم"): one of them anywhere makes the message theirs. Compared folded.
_WORDS = {
    "sd": ("آهي", "آهن", "ناهي", "مون", "منهنجو", "منهنجي", "منهنجا", "توهان", "گهرجي"),
    "ps": ("زه", "زما", "تاسو", "نشته", "مننه"),
}
_LANGUAGE_OF_WORD = {fold(word): lang for lang, words in _WORDS.items() for word in words}

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"


def language_from_code(code: str) -> str | None:
    """The language for what someone typed after LANG (`UR`, `roman urdu`, `3`), or None."""
    key = re.sub(r"[\s_\-]+", "", fold(code.strip()))
    return _BY_NAME.get(key)


def detect_language(text: str) -> str | None:
    """Guess the language from the letters of `text` (and a Sindhi or Pashto keyword it starts
    with); None when it has no letters."""
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
        for word in text.split():
            if (lang := _LANGUAGE_OF_WORD.get(fold(word))) is not None:
                return lang
        return keyword_language(text) or "ur"
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


#: Latin words every language's help prints or every language types (`TRACK`, `PAY`, `OK`): a
#: message of nothing else says nothing of its writer's language.
_NEUTRAL_WORDS = frozenset(
    fold(word) for words in KEYWORDS.values() for word in words if word.isascii()
) | frozenset({"ok", "okay", "oky", "k", "yes", "no", "cnic", "bisp", "code", "otp", "pin"})


def says_no_language(text: str) -> bool:
    """True when `text` is only keywords, numbers, ticket ids and "ok": each language's help
    tells people to send `TRACK G-7K3M9Q` and `PAY`, and the answer stays in their language."""
    words = [fold(word) for word in text.split()]
    return all(
        not any(c.isalpha() for c in word)
        or word in _NEUTRAL_WORDS
        or normalise_ticket_id(word) is not None
        for word in words
    )


def guess_language(text: str, previous: str | None) -> str | None:
    """The language to answer `text` in until the person chooses one, `previous` the guess so
    far; None when `text` has no letters. A message in which only a keyword or a ticket id is
    Latin (`TRACK G-7K3M9Q`, `PAY 35202-1234567-1`, `ok`) keeps the guess so far: it is
    English only for someone who has not written before. See `keep_guess`."""
    detected = detect_language(text)
    if detected == "en" and previous is not None and says_no_language(text):
        return previous
    return keep_guess(detected, previous)


def keep_guess(detected: str | None, previous: str | None) -> str | None:
    """The guess after a message `detect_language` read as `detected`: its own, except that
    Arabic script with nothing Sindhi or Pashto about it (`مدد`, `شکایت`, a button's `حالت`)
    keeps an earlier guess of Sindhi or Pashto rather than turn it to Urdu."""
    if detected == "ur" and previous in ("sd", "ps"):
        return previous
    return detected
