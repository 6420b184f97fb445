"""Keywords and language names as Sindhi, Pashto and Punjabi speakers type them: their own
spellings, Arabic-keyboard letters, vowel marks; and the language they are answered in."""

from __future__ import annotations

import re

import pytest

from bot.channels.telegram import menu_text
from bot.dialogue.keywords import KEYWORD_LANGUAGES, KEYWORDS, Intent, parse
from bot.i18n import LANGUAGE_KEYWORD, LANGUAGES, detect_language, guess_language
from bot.i18n import language_from_code as code

BY_KEYWORD = {keyword: language for language, keyword in LANGUAGE_KEYWORD.items()}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_language_name_a_menu_prints_sets_that_language(renderer, language):
    """`LANG SD سندهي` in Pashto's menu: whoever copies the name they read gets that language."""
    menu = renderer.render_text("language/menu", {}, language=language, channel="sms")
    pairs = re.findall(r"\b(EN|UR|RU|SD|PS|PA) ([^،,.۔]+)", menu)
    assert len(pairs) == len(LANGUAGES), menu
    for keyword, name in pairs:
        assert code(name) == BY_KEYWORD[keyword], (language, keyword, name)


@pytest.mark.parametrize(
    ("typed", "language"),
    [
        ("پنجابي", "pa_Arab"),  # Arabic yeh
        ("پنجابى", "pa_Arab"),  # alef maksura
        ("سندهي", "sd"),  # as Pashto writes it
        ("سندھي", "sd"),
        ("سندی", "sd"),
        ("سنڌي؟", "sd"),
        ("انگريزي", "en"),
        ("انګرېزي", "en"),
        ("اُردو", "ur"),
        ("اردو۔", "ur"),
        ("پختو", "ps"),
        ("Pakhto", "ps"),
        ("رومن اردو", "ur_Latn"),
    ],
)
def test_language_names_in_every_spelling(typed, language):
    assert code(typed) == language


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("مَدَد", Intent.HELP),  # zabar
        ("شِکایت", Intent.COMPLAINT),  # zer
        ("مـدد", Intent.HELP),  # tatweel
        ("اَدائیگی", Intent.PAY),
        ("پیسې 🙏", Intent.PAY),
        ("صورتحال", Intent.TRACK),  # the word Urdu's help text gives TRACK
        ("حال", Intent.TRACK),  # and Punjabi's
        ("روڪيو", Intent.STOP),
        ("ودروه", Intent.STOP),
        ("ګیله", Intent.COMPLAINT),
        ("څارنه", Intent.TRACK),
        ("کومک", Intent.HELP),
    ],
)
def test_keywords_with_marks_and_in_sindhi_and_pashto(text, intent):
    assert parse(text).intent is intent


@pytest.mark.parametrize("language", ["ur", "sd", "ps", "pa_Arab"])
def test_every_word_a_help_text_gives_a_keyword_is_that_keyword(renderer, language):
    """`PAY: ادائگي` in Sindhi's help: the word after the keyword, in the language's own script,
    works as the keyword."""
    help_text = renderer.render_text("help/menu", {}, language=language, channel="sms")
    pairs = re.findall(r"\b(PAY|COMPLAINT|LANG): (\S+?)[.۔]", help_text)
    pairs += re.findall(r"\b(TRACK)\b[^:]*: (\S+?)[.۔]", help_text)
    assert len(pairs) == 4, help_text
    for keyword, word in pairs:
        assert parse(word).intent is parse(keyword).intent, (language, keyword, word)


@pytest.mark.parametrize(("word", "language"), list(KEYWORD_LANGUAGES.items()))
def test_a_sindhi_or_pashto_keyword_is_answered_in_its_language(word, language):
    assert parse(word).intent is not Intent.UNKNOWN
    assert detect_language(word) == language
    assert detect_language(f"{word}؟") == language


@pytest.mark.parametrize("intent", [i for i in KEYWORDS if i is not Intent.START])
@pytest.mark.parametrize("language", ["sd", "ps"])
def test_every_keyword_has_a_spelling_read_as_sindhi_and_as_pashto(intent, language):
    assert any(detect_language(word) == language for word in KEYWORDS[intent]), intent


def test_urdu_keywords_stay_urdu():
    for word in ("مدد", "ادائیگی", "پیسے", "شکایت", "حالت", "ٹریک", "زبان", "بند", "شروع"):
        assert detect_language(word) == "ur", word


@pytest.mark.parametrize("previous", ["sd", "ps"])
def test_a_word_urdu_shares_keeps_a_sindhi_or_pashto_guess(previous):
    for word in ("مدد", "شکایت", "حالت", "بند"):
        assert guess_language(word, previous) == previous
    assert guess_language("madad", previous) == "ur_Latn"  # another script is a new guess
    assert guess_language("مدد", "en") == "ur"
    assert guess_language("3520212345671", previous) is None


@pytest.mark.parametrize("data", ["menu:payments", "menu:complaint", "menu:track", "menu:language"])
@pytest.mark.parametrize("language", ["sd", "ps"])
def test_menu_buttons_keep_a_sindhi_or_pashto_conversation(data, language):
    text = menu_text(data, language=language) or ""
    assert detect_language(text) == language, text


def test_the_reply_cache_expects_the_language_the_dialogue_answers_in():
    from api.surge import cache_subject, expected_language
    from bot.dialogue.state import Conversation

    help_ = cache_subject("مدد")
    assert help_ is not None
    conversation = Conversation("sms", "+923331234567", guessed_language="ps")
    assert expected_language(conversation, help_, "ur") == "ps"
    conversation.language = "ur"
    assert expected_language(conversation, help_, "ur") == "ur"
