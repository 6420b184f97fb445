"""Keywords, language detection, catalogs, and every template in every language on every channel."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.catalogs import check
from bot.channels import CHANNELS
from bot.dialogue.keywords import KEYWORDS, Intent, parse
from bot.i18n import LANGUAGES, detect_language, guess_language, language_from_code
from bot.i18n_report import (
    LATIN_LANGUAGES,
    SMS_MESSAGES,
    WORST_CASE_CONTEXT,
    render_worst_case,
    sms_budget,
)
from bot.render import TEMPLATES_DIR
from bot.segments import measure

KEYWORD_CASES = [
    ("HELP", Intent.HELP),
    ("menu", Intent.HELP),
    ("Madad", Intent.HELP),
    ("مدد", Intent.HELP),
    ("مرسته", Intent.HELP),
    ("PAY", Intent.PAY),
    ("pay 3520212345671", Intent.PAY),
    ("paise", Intent.PAY),
    ("ادائیگی", Intent.PAY),
    ("COMPLAINT", Intent.COMPLAINT),
    ("shikayat paise nahi mile", Intent.COMPLAINT),
    ("شکایت", Intent.COMPLAINT),
    ("شڪايت", Intent.COMPLAINT),
    ("TRACK G-7K3M9Q", Intent.TRACK),
    ("LANG UR", Intent.LANGUAGE),
    ("زبان", Intent.LANGUAGE),
    ("ٻولي", Intent.LANGUAGE),
    ("ژبه", Intent.LANGUAGE),
    ("STOP", Intent.STOP),
    ("START", Intent.START),
    ("band", Intent.STOP),
    ("3520212345671", Intent.CNIC),
    ("35202-1234567-1", Intent.CNIC),
    ("123456", Intent.CODE),
    ("2", Intent.NUMBER),
    ("12345678", Intent.NOT_CNIC),
    ("", Intent.EMPTY),
    ("hello there", Intent.UNKNOWN),
    ("😀", Intent.UNKNOWN),
    # A greeting alone opens the chat: the menu.
    ("hello", Intent.HELP),
    ("Hi 👋", Intent.HELP),
    ("Assalam o alaikum", Intent.HELP),
    ("السلام عليكم", Intent.HELP),
    ("Salam 3520212345671", Intent.CNIC),
    # Urdu and Arabic punctuation around a keyword, as ASCII punctuation.
    ("مدد؟", Intent.HELP),
    ("مدد۔", Intent.HELP),
    ("HELP؟", Intent.HELP),
    ("شکایت،", Intent.COMPLAINT),
    ("ٹریک۔", Intent.TRACK),
    ("پیسے؟", Intent.PAY),
    ("«زبان»؛", Intent.LANGUAGE),
    # Arabic-keyboard letters: yeh ي and alef maksura ى for ی, kaf ك for ک, heh ه for ہ.
    ("پيسے", Intent.PAY),
    ("ادائيگي", Intent.PAY),
    ("ادائیگى", Intent.PAY),
    ("شكايت", Intent.COMPLAINT),
    ("ٹريك", Intent.TRACK),
    ("هيلپ", Intent.HELP),
    # "Am I eligible?" without a CNIC: the eligibility of the person asking.
    ("kya main ahal hoon", Intent.CNIC),
    ("kya mai eligible hoon", Intent.CNIC),
    ("am I eligible?", Intent.CNIC),
    ("کیا میں اہل ہوں", Intent.CNIC),
    ("ڇا مان اهل آهيان؟", Intent.CNIC),
    ("ایا زه وړ یم؟", Intent.CNIC),
    ("کی میں اہل آں؟", Intent.CNIC),
    ("shikayat eligibility ki", Intent.COMPLAINT),
]


@pytest.mark.parametrize(("text", "intent"), KEYWORD_CASES)
def test_keywords(text, intent):
    assert parse(text).intent is intent


def test_keyword_argument_is_the_rest():
    command = parse("track   G-7K3M9Q")
    assert command.intent is Intent.TRACK and command.argument == "G-7K3M9Q"


def test_every_keyword_is_its_own_intent_after_folding():
    for intent, words in KEYWORDS.items():
        for word in words:
            assert parse(word).intent is intent, word


def test_punctuation_alone_after_a_keyword_is_no_argument():
    assert parse("مدد ؟") == parse("مدد")
    assert parse("shikayat، paise nahi mile!").argument == "paise nahi mile!"


def test_every_intent_with_keywords_has_latin_and_arabic_aliases():
    for intent, words in KEYWORDS.items():
        assert any(w.isascii() for w in words), intent
        assert any(not w.isascii() for w in words) or intent in (Intent.STOP,), intent


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("HELP", "en"),
        ("what is my status", "en"),
        ("madad", "ur_Latn"),
        ("mujhe paise nahi mile", "ur_Latn"),
        ("مدد", "ur"),
        ("میرے پیسے نہیں ملے", "ur"),
        ("مون کي پئسا ڪونه مليا", "sd"),
        ("زما پیسې نه دي ترلاسه شوې", "ps"),
        ("3520212345671", None),
        ("😀", None),
        ("", None),
    ],
)
def test_detect_language(text, language):
    assert detect_language(text) == language


@pytest.mark.parametrize(
    ("code", "language"),
    [
        ("EN", "en"),
        ("ur", "ur"),
        ("RU", "ur_Latn"),
        ("roman urdu", "ur_Latn"),
        ("SD", "sd"),
        ("PS", "ps"),
        ("PA", "pa_Arab"),
        ("اردو", "ur"),
        ("3", "ur_Latn"),
        ("XX", None),
    ],
)
def test_language_codes(code, language):
    assert language_from_code(code) == language


def test_catalogs_are_complete_with_identical_placeholders():
    assert check() == []


# -- every template, every language, every channel ---------------------------------------------


def all_templates() -> list[str]:
    root = TEMPLATES_DIR / "messages"
    names = set()
    for path in root.rglob("*.j2"):
        relative = path.relative_to(root).as_posix()
        stem = relative[: -len(".j2")]
        for channel in CHANNELS:
            stem = stem.removesuffix(f".{channel}")
        names.add(stem)
    return sorted(names)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("channel", sorted(CHANNELS))
def test_every_template_renders(renderer, language, channel):
    for name in all_templates():
        if name.rsplit("/", 1)[-1].startswith("_"):
            continue  # macros, imported by the others
        text = renderer.render_text(name, WORST_CASE_CONTEXT, language=language, channel=channel)
        assert text.strip(), f"{name} rendered empty in {language} on {channel}"
        assert "%(" not in text and "{{" not in text, f"{name} left a placeholder"
        if language != "en" and name not in UNTRANSLATED:
            english = renderer.render_text(name, WORST_CASE_CONTEXT, language="en", channel=channel)
            assert text != english, f"{name} is not translated into {language}"


#: Templates with no prose: language names in their own script, bare CNICs as button labels, a
#: complaint number and its CNIC as a WhatsApp template's variable.
UNTRANSLATED = {"language/name", "verify/person_option", "grievance/template_subject"}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", SMS_MESSAGES)
def test_sms_budget(renderer, language, name):
    """Every SMS message, with worst-case data, within its segment budget (SPEC §2)."""
    text = render_worst_case(renderer, name, language)
    cost = measure(text)
    budget = sms_budget(name, language)
    assert cost.segments <= budget, f"{name} [{language}] {cost}: {text}"
    if language in LATIN_LANGUAGES:
        assert cost.encoding == "GSM-7", f"{name} [{language}] is not GSM-7: {text!r}"


def test_templates_hold_no_untranslated_prose():
    """Every line of prose in a template sits inside a trans block (names of languages aside)."""
    for path in Path(TEMPLATES_DIR / "messages").rglob("*.j2"):
        if path.name.startswith(("name.", "person_option.")):
            continue
        text = path.read_text(encoding="utf-8")
        outside = text
        while "{% trans" in outside:
            start = outside.index("{% trans")
            end = outside.index("{% endtrans %}", start) + len("{% endtrans %}")
            outside = outside[:start] + outside[end:]
        outside = re.sub(r"{%.*?%}|{{.*?}}|{#.*?#}", "", outside, flags=re.S)
        leftover = "".join(ch for ch in outside if ch.isalpha())
        assert not leftover.strip(), f"{path}: text outside trans: {outside!r}"


@pytest.mark.parametrize("previous", ["ur_Latn", "ur", "sd", "ps", "pa_Arab"])
@pytest.mark.parametrize(
    "text", ["TRACK", "TRACK G-7K3M9Q", "PAY 35202-1234567-1", "ok", "STOP", "code 123456"]
)
def test_a_keyword_a_ticket_or_a_code_keeps_the_guess(text, previous):
    assert guess_language(text, previous) == previous


def test_latin_words_of_their_own_are_a_new_guess():
    assert guess_language("TRACK", None) == "en"
    assert guess_language("what is my payment date", "ur_Latn") == "en"
    assert guess_language("agent ne paise kaat liye", "en") == "ur_Latn"
