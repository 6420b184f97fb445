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
KEYWORDS: dict[Intent, tuple[str, ...]] = {
    Intent.HELP: (
        "help",
        "menu",
        "madad",
        "maddad",
        "info",
        "مدد",
        "مینو",
        "ہیلپ",  # ur / pa
        "مدد",
        "مينيو",  # sd
        "مرسته",
        "مینو",  # ps
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
        "پيسا",
        "رقم",  # sd
        "پیسې",
        "تادیه",  # ps
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
        "شکايت",  # ps (Arabic yeh)
    ),
    Intent.TRACK: (
        "track",
        "status",
        "halat",
        "haalat",
        "ٹریک",
        "حالت",  # ur / pa
        "ٽريڪ",
        "حالت",  # sd
        "حالت",
        "تعقیب",  # ps
    ),
    Intent.LANGUAGE: (
        "lang",
        "language",
        "zaban",
        "zuban",
        "zubaan",
        "zabaan",
        "زبان",  # ur / pa
        "ٻولي",  # sd
        "ژبه",  # ps
        "بولی",  # pa
    ),
    Intent.STOP: ("stop", "unsubscribe", "band", "بند", "بس"),
    Intent.START: ("start", "shuru", "subscribe", "شروع", "پیل", "شروع"),
}

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
#: keheh, heh and teh marbuta for heh goal and its teh marbuta. Folded on both sides of a keyword
#: match only: Sindhi writes ي and Pashto tells ي from ی, so the text itself (a complaint's
#: words) keeps the letters the person typed.
_ARABIC_KEYBOARD = str.maketrans("يىكهة", "ییکہۃ")
#: What surrounds a word but is no letter or digit, in any script: `HELP؟`, `مدد۔`, `شکایت،`.
_AROUND_WORD = re.compile(r"^\W+|\W+$")
_NO_WORD = re.compile(r"\W*")


def _key(word: str) -> str:
    """A word as the keyword table is looked up by: case and Arabic-keyboard letters folded,
    the punctuation around it stripped."""
    return _AROUND_WORD.sub("", word.casefold().translate(_ARABIC_KEYBOARD))


_BY_WORD: dict[str, Intent] = {
    _key(word): intent for intent, words in KEYWORDS.items() for word in words
}
_WORD = re.compile(r"\S+")
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
    cnic_like = find_cnic_like(text)
    if cnic_like is not None:
        # "my cnic is 35202-1234567-1 please": the number is what matters.
        return Command(Intent.CNIC, cnic_like)
    if sum(c.isdigit() for c in text) >= 9:
        return Command(Intent.NOT_CNIC, text)
    return Command(Intent.UNKNOWN, text)


def is_roman_urdu(text: str) -> bool:
    """True when a Latin-script message uses Roman Urdu words."""
    words = {_key(w) for w in _WORD.findall(text)}
    return bool(words & ROMAN_URDU_WORDS)
