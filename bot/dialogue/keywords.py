"""SMS/WhatsApp keywords (SPEC §9): printed on posters, so stable. One table, every language."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from api.identity import find_cnic_like


class Intent(enum.StrEnum):
    CNIC = "cnic"
    PAY = "pay"
    COMPLAINT = "complaint"
    TRACK = "track"
    LANGUAGE = "language"
    HELP = "help"
    STOP = "stop"
    START = "start"
    CODE = "code"  # six digits: an OTP or a menu number, the step decides
    NUMBER = "number"  # a short number: a menu choice
    NOT_CNIC = "not_cnic"  # digits that were meant as a CNIC but are not one
    EMPTY = "empty"
    UNKNOWN = "unknown"


#: Keyword → intent. English, Roman Urdu, Urdu, Sindhi, Pashto and Punjabi (Shahmukhi) aliases.
#: Each language's help text names the keywords in its own words (`PAY: ادائگي`), so each of
#: those words is one. Looked up folded (`_key`): diacritics, tatweel, case and Arabic-keyboard
#: letters do not matter.
KEYWORDS: dict[Intent, tuple[str, ...]] = {
    Intent.HELP: (
        "help",
        "menu",
        "madad",
        "maddad",
        "info",
        "مدد",
        "مینو",
        "ہیلپ",  # ur / pa / sd
        "مينيو",  # sd
        "مرسته",
        "کومک",  # ps
    ),
    Intent.PAY: (
        "pay",
        "payment",
        "paise",
        "paisay",
        "paisa",
        "raqam",
        "adaigi",
        "ادائیگی",
        "رقم",
        "پیسے",  # ur / pa
        "ادائگي",
        "پئسا",
        "پيسا",  # sd
        "پیسې",
        "تادیه",
        "روپۍ",  # ps
    ),
    Intent.COMPLAINT: (
        "complaint",
        "complain",
        "shikayat",
        "shikayet",
        "shikaayat",
        "شکایت",  # ur / ps / pa
        "شڪايت",
        "دانهن",  # sd
        "ګیله",
        "گیله",  # ps (the second as typed without Pashto's gaf)
    ),
    Intent.TRACK: (
        "track",
        "status",
        "halat",
        "haalat",
        "ٹریک",
        "حالت",
        "صورتحال",  # ur (its help text's word)
        "حال",  # pa (its help text's word)
        "ٽريڪ",  # sd
        "تعقیب",
        "څارنه",  # ps
    ),
    Intent.LANGUAGE: (
        "lang",
        "language",
        "zaban",
        "zuban",
        "zubaan",
        "zabaan",
        "زبان",  # ur
        "ٻولي",  # sd
        "ژبه",  # ps
        "بولی",  # pa
    ),
    Intent.STOP: (
        "stop",
        "unsubscribe",
        "band",
        "بند",
        "بس",
        "روڪيو",  # sd
        "ودروه",  # ps
    ),
    Intent.START: ("start", "shuru", "subscribe", "شروع", "پیل"),
}

#: Keywords only Sindhi or only Pashto write, whose letters are Urdu's too: the language a
#: message that has no letter of its own is guessed to be (`bot.i18n.detect_language`). Words
#: Urdu also writes (`مدد`, `شکایت`, `حالت`) are not here: those stay Urdu (SPEC §2).
KEYWORD_LANGUAGES: dict[str, str] = {
    "مينيو": "sd",  # Sindhi's help text spells menu so; Urdu's writes مینو
    "ادائگي": "sd",
    "پئسا": "sd",
    "دانهن": "sd",
    "مرسته": "ps",
    "کومک": "ps",
    "تادیه": "ps",
    "گیله": "ps",
    "تعقیب": "ps",
    "ودروه": "ps",
    "ژبه": "ps",
    "پیل": "ps",
}

#: Words of a greeting: a message of nothing else ("Hi", "Assalam o alaikum", "السلام علیکم")
#: is someone opening the chat, and is shown the help, as HELP is.
GREETINGS = frozenset(
    {
        "hi",
        "hii",
        "hello",
        "helo",
        "hey",
        "salam",
        "salaam",
        "slam",
        "assalam",
        "asalam",
        "assalamu",
        "assalamo",
        "o",
        "u",
        "alaikum",
        "alaykum",
        "alikum",
        "aleikum",
        "assalamualaikum",
        "assalamoalaikum",
        "asalamualaikum",
        "aoa",
        "السلام",
        "اسلام",
        "سلام",
        "علیکم",
    }
)

#: Words that mark a Latin-script message as Roman Urdu rather than English.
ROMAN_URDU_WORDS = frozenset(
    {
        "madad",
        "maddad",
        "paise",
        "paisay",
        "raqam",
        "adaigi",
        "shikayat",
        "shikayet",
        "shikaayat",
        "halat",
        "haalat",
        "zaban",
        "zuban",
        "zubaan",
        "zabaan",
        "band",
        "shuru",
        "mera",
        "meri",
        "mere",
        "mujhe",
        "mujhay",
        "kya",
        "kiya",
        "hai",
        "hain",
        "nahi",
        "nahin",
        "kab",
        "kahan",
        "kaise",
        "kaisay",
        "kyun",
        "shukriya",
        "salam",
        "assalam",
        "aoa",
        "aap",
        "ap",
        "bhai",
        "baji",
        "behan",
        "ammi",
        "abbu",
        "pesay",
        "pese",
        "milay",
        "mila",
        "milega",
        "hoga",
        "hogi",
        "kardo",
        "karo",
        "batao",
        "bataen",
        "bataein",
    }
)

#: Letters an Arabic keyboard types for Urdu's own: yeh and alef maksura for farsi yeh, kaf for
#: keheh, heh, ae and do-chashmi heh for heh goal, teh marbuta for its teh marbuta (`سندهي`,
#: `پنجابي` as Pashto and Sindhi write them, `سندھی` as Urdu does). Folded on both sides of a
#: keyword match only: Sindhi writes ي and Pashto tells ي from ی, so the text itself (a
#: complaint's words) keeps the letters the person typed.
_ARABIC_KEYBOARD = str.maketrans("يىكهةەھ", "ییکہۃہہ")
#: Vowel marks (zabar, zer, pesh, tanween, shadda, jazm, khari zabar, ...) and the tatweel that
#: stretches a word: `مَدَد`, `شِکایت` and `مـدد` are `مدد` and `شکایت`.
_MARKS = re.compile(
    "[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e8\u06ea-\u06ed\u0640]"
)
#: What surrounds a word but is no letter or digit, in any script: `HELP؟`, `مدد۔`, `شکایت،`.
_AROUND_WORD = re.compile(r"^\W+|\W+$")
_NO_WORD = re.compile(r"\W*")


def fold(word: str) -> str:
    """A word as the keyword and language-name tables are looked up by: case, vowel marks and
    Arabic-keyboard letters folded, the punctuation around it stripped."""
    return _AROUND_WORD.sub("", _MARKS.sub("", word.casefold()).translate(_ARABIC_KEYBOARD))


_key = fold


_BY_WORD: dict[str, Intent] = {
    _key(word): intent for intent, words in KEYWORDS.items() for word in words
}
_LANGUAGE_BY_WORD: dict[str, str] = {_key(word): lang for word, lang in KEYWORD_LANGUAGES.items()}
_WORD = re.compile(r"\S+")
_GREETING_KEYS = frozenset(_key(word) for word in GREETINGS)
_DIGITS_ONLY = re.compile(r"[0-9\s\-.]+", re.ASCII)


@dataclass(frozen=True, slots=True)
class Command:
    """A parsed message: what the person wants and the rest of what they wrote."""

    intent: Intent
    argument: str = ""
    keyword: str = ""


def parse(text: str) -> Command:
    """Read a normalised message (ASCII digits, no invisible marks) as one command."""
    text = text.strip()
    if not text:
        return Command(Intent.EMPTY)
    # Any whitespace ends the keyword: "PAY" and the CNIC are often typed on two lines.
    first, *others = text.split(maxsplit=1)
    rest = others[0] if others else ""
    word = _key(first)
    intent = _BY_WORD.get(word)
    if intent is not None:
        # `مدد ؟`: punctuation alone after the keyword is no argument.
        return Command(intent, "" if _NO_WORD.fullmatch(rest) else rest.strip(), keyword=word)
    if _DIGITS_ONLY.fullmatch(text):
        digits = re.sub(r"[^0-9]", "", text)
        if len(digits) == 13:
            return Command(Intent.CNIC, text)
        if len(digits) == 6 and digits == text:
            return Command(Intent.CODE, digits)
        if 1 <= len(digits) <= 2 and digits == text:
            return Command(Intent.NUMBER, digits)
        if len(digits) >= 5:
            return Command(Intent.NOT_CNIC, text)
    if is_greeting(text):
        return Command(Intent.HELP)
    cnic_like = find_cnic_like(text)
    if cnic_like is not None:
        # "my cnic is 35202-1234567-1 please": the number is what matters.
        return Command(Intent.CNIC, cnic_like)
    if sum(c.isdigit() for c in text) >= 9:
        return Command(Intent.NOT_CNIC, text)
    return Command(Intent.UNKNOWN, text)


def is_greeting(text: str) -> bool:
    """True when the message is a greeting and nothing else (emoji and punctuation aside)."""
    words = [w for w in (_key(word) for word in _WORD.findall(text)) if w]
    return bool(words) and all(w in _GREETING_KEYS for w in words)


def is_roman_urdu(text: str) -> bool:
    """True when a Latin-script message uses Roman Urdu words."""
    words = {_key(w) for w in _WORD.findall(text)}
    return bool(words & ROMAN_URDU_WORDS)


def keyword_language(text: str) -> str | None:
    """The language of a Sindhi-only or Pashto-only keyword `text` starts with, if it does."""
    first = text.split(maxsplit=1)
    return _LANGUAGE_BY_WORD.get(_key(first[0])) if first else None
