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

#: Words of thanks: a message of nothing else is someone closing the chat, not a request.
THANKS = frozenset(
    {
        "thanks",
        "thank",
        "you",
        "thx",
        "thankyou",
        "shukriya",
        "shukria",
        "shukriyah",
        "meherbani",
        "mehrbani",
        "jazakallah",
        "jazakallahkhair",
        "khair",
        "bohat",
        "bahut",
        "boht",
        "bht",
        "very",
        "much",
        "شکریہ",
        "شكريه",
        "مہربانی",
        "مهرباني",  # sd
        "مننه",  # ps
        "ڈاڈھا",
        "بہت",
        "جزاک",
        "اللہ",
    }
)

#: Words that ask for a complaint's progress rather than a new one, with a complaint word:
#: "meri shikayat ka kya bana", "شکایت کا کیا ہوا".
TRACK_WORDS = frozenset({"bana", "bani", "hua", "huwa", "howa", "بنا", "بنی", "ہوا", "شو", "وشو"})


#: Words that ask whether one is eligible, as each language's eligibility answers word it
#: (`ahal`, `اہل`, `اهل`, `وړ`): "kya main ahal hoon", "am I eligible?", "کیا میں اہل ہوں".
ELIGIBILITY_WORDS = frozenset(
    {
        "eligible",
        "eligibility",
        "ahal",
        "ahl",
        "ehal",
        "ahel",
        "ahliyat",
        "ehliyat",
        "اہل",  # ur / pa
        "اہلیت",
        "اهل",  # sd
        "اهليت",
        "وړ",  # ps
        "وړتیا",
    }
)

#: Words of asking to file, which say nothing of the complaint itself: "shikayat darj karni
#: hai", "complaint I want to file", "شکایت درج کروانی ہے", "ګیله ثبتول غواړم".
FILING_WORDS = frozenset(
    {
        "darj",
        "karni",
        "karna",
        "krni",
        "krna",
        "karwani",
        "karwana",
        "karani",
        "kar",
        "karo",
        "karein",
        "karen",
        "krdo",
        "kardo",
        "do",
        "dein",
        "hai",
        "he",
        "hy",
        "chahiye",
        "chahie",
        "chahta",
        "chahti",
        "hun",
        "hoon",
        "mujhe",
        "mujhay",
        "mein",
        "main",
        "ek",
        "aik",
        "ki",
        "i",
        "want",
        "to",
        "file",
        "a",
        "an",
        "register",
        "make",
        "lodge",
        "please",
        "plz",
        "pls",
        "درج",
        "کرنی",
        "کرنا",
        "کروانی",
        "کرانی",
        "کریں",
        "ہے",
        "چاہیے",
        "مجھے",
        "میں",
        "ایک",
        "کی",
        "ثبت",  # ps
        "ثبتول",
        "کول",
        "غواړم",
        "ده",
        "زه",
        "يو",
        "ڪرڻي",  # sd
        "ڪرائڻي",
        "آهي",
        "مون",
        "کي",
        "مینوں",  # pa
        "اے",
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
        "han",
        "haan",
        "ji",
        "jee",
        "theek",
        "thik",
        "acha",
        "achha",
        "shukria",
        # Words of every Roman Urdu sentence, none of them English: "agent ne paise kaat liye".
        "ne",
        "ka",
        "ki",
        "ke",
        "ko",
        "se",
        "mein",
        "aur",
        "bhi",
        "tak",
        "liye",
        "gaya",
        "gayi",
        "diya",
        "diye",
        "tha",
        "thi",
        "abhi",
        "kuch",
        "pata",
        "karni",
        "karna",
        "darj",
        "rupay",
        "rupaye",
        "kaat",
        "kaate",
        "wapas",
        "beta",
        "beti",
    }
)

#: Words for yes and no, in every language, as people answer a "1 yes, 2 no" question:
#: "han", "ji", "ہاں", Pashto's "هو", Sindhi's "ها"; "nahi", "نہیں", "نه". Compared folded.
YES_WORDS = frozenset(
    {
        "yes",
        "y",
        "ok",
        "okay",
        "han",
        "haan",
        "haa",
        "ha",
        "hn",
        "ji",
        "jee",
        "g",
        "theek",
        "thik",
        "ہاں",
        "ہا",
        "ہان",
        "جی",
        "ٹھیک",
        "هو",  # ps
        "ها",  # sd
        "ھا",
    }
)
NO_WORDS = frozenset(
    {
        "no",
        "n",
        "nahi",
        "nahin",
        "nai",
        "na",
        "nhi",
        "نہیں",
        "نہ",
        "نا",
        "نئیں",  # pa
        "ناں",  # pa
        "نه",  # sd / ps
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
_YES_KEYS = frozenset(_key(word) for word in YES_WORDS)
_NO_KEYS = frozenset(_key(word) for word in NO_WORDS)
_THANKS_KEYS = frozenset(_key(word) for word in THANKS)
_TRACK_KEYS = frozenset(_key(word) for word in TRACK_WORDS)
_ELIGIBILITY_KEYS = frozenset(_key(word) for word in ELIGIBILITY_WORDS)
#: Other forms of the payment words, only inside a sentence: "paison", "pesay", "qist".
_PAY_KEYS = frozenset(
    _key(word)
    for word in ("paison", "pesay", "pese", "paiso", "qist", "پیسوں", "پیسہ", "قسط", "پیسو")
)
_PLEASANTRIES = _YES_KEYS | _NO_KEYS | _GREETING_KEYS | _THANKS_KEYS
_SMALL_TALK = _PLEASANTRIES | {_key(w) for w in FILING_WORDS}
_QUESTION_ONLY = re.compile(r"[\s?؟!.]*[?؟][\s?؟!.]*")
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
    asked = asked_in_words(text)
    cnic_like = find_cnic_like(text)
    if cnic_like is not None:
        # "my cnic is 35202-1234567-1 please": the number is what matters ("ammi ke paise
        # 35202-1234567-1": the payment of that CNIC).
        if asked is Intent.PAY:
            return Command(Intent.PAY, cnic_like)
        return Command(Intent.CNIC, cnic_like)
    if asked is not None and sum(c.isdigit() for c in text) < 5:
        # No keyword: the request as the person says it. Without `keyword`, so that at a
        # menu it is an answer to ask again, not a new request (`Turn.starts_afresh`).
        return Command(asked)
    if sum(c.isdigit() for c in text) >= 9:
        return Command(Intent.NOT_CNIC, text)
    return Command(Intent.UNKNOWN, text)


def yes_or_no(text: str) -> bool | None:
    """True for a yes ("han", "ji", "ہاں", "ok"), False for a no ("nahi", "ji nahi", "نہیں"),
    None for anything else: a message of one or two such words, emoji and punctuation aside."""
    words = {w for w in (_key(word) for word in _WORD.findall(text)) if w}
    if not words or len(words) > 2 or not words <= _YES_KEYS | _NO_KEYS:
        return None
    return not words & _NO_KEYS  # "ji nahi" is a polite no


def asked_in_words(text: str) -> Intent | None:
    """The request a sentence makes in the person's own words, a keyword not first: "mera
    paisa kab milay ga" (PAY), "mujhe shikayat karni hai" (COMPLAINT), "meri shikayat ka kya
    bana" (TRACK), "kya main ahal hoon" (CNIC, without one: the eligibility of the person
    asking). Only payment, complaint and eligibility words count: "band" or "shuru" inside a
    sentence ("paisa band ho gaya") is no STOP or START, and "status" alone ("what is my
    status") may mean eligibility as well as a complaint's."""
    words = {w for w in (_key(word) for word in _WORD.findall(text)) if w}
    found = {_BY_WORD.get(word) for word in words}
    if Intent.COMPLAINT in found and (Intent.TRACK in found or words & _TRACK_KEYS):
        return Intent.TRACK
    if Intent.COMPLAINT in found:
        return Intent.COMPLAINT
    if Intent.PAY in found or words & _PAY_KEYS:
        return Intent.PAY
    if words & _ELIGIBILITY_KEYS:
        return Intent.CNIC
    return None


def _worded(text: str) -> list[str]:
    words = (_key(word) for word in _WORD.findall(text))
    return [w for w in words if any(c.isalpha() for c in w)]


def is_small_talk(text: str) -> bool:
    """True when `text` has no word of its own: only a yes, a no, a greeting, thanks, or the
    asking itself ("darj karni hai", "I want to file", "درج کرنی ہے") — no complaint's words."""
    return all(w in _SMALL_TALK for w in _worded(text))


def is_pleasantry(text: str) -> bool:
    """True for thanks, an "ok", a yes or a no with nothing asked, or a bare "?": someone
    closing the chat or lost in it, to be shown what they can ask, not told "not understood"."""
    worded = _worded(text)
    if not worded:
        return bool(_QUESTION_ONLY.fullmatch(text))
    return all(w in _PLEASANTRIES for w in worded)


def says_something(text: str) -> bool:
    """True when `text` is two or more words of the person's own (not `is_small_talk`):
    "paise nahi mile" describes a problem, "ji shukriya" does not."""
    return len(_worded(text)) >= 2 and not is_small_talk(text)


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
