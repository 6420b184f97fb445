"""SMS from Sindhi and Pashto speakers who never chose a language: their own keywords are
answered in their language, and a word Urdu shares does not turn the conversation Urdu."""

from __future__ import annotations

import pytest

from bot.i18n import detect_language
from bot.segments import measure
from tests.api.test_sms_payments import Chat

PHONE = "+923331234567"  # registered to nobody


@pytest.mark.parametrize(
    ("first", "language"),
    [
        ("ادائگي", "sd"),
        ("دانهن", "sd"),
        ("مينيو", "sd"),
        ("مرسته", "ps"),
        ("ژبه", "ps"),
        ("تعقیب", "ps"),
        ("ودروه", "ps"),
    ],
)
async def test_a_first_keyword_of_their_own_is_answered_in_their_language(
    client, registry, first, language
):
    reply = await Chat(client, PHONE).send(first)
    assert detect_language(reply) == language, reply
    assert measure(reply).segments <= 2, reply


@pytest.mark.parametrize(
    ("opening", "language"), [("ٻولي", "sd"), ("پیسې", "ps"), ("مون کي مدد گهرجي", "sd")]
)
async def test_words_urdu_shares_keep_the_conversation_in_their_language(
    client, registry, opening, language
):
    chat = Chat(client, PHONE)
    assert detect_language(await chat.send(opening)) == language
    for word in ("مدد", "شکایت", "حالت", "مَدَد", "شكايت"):
        reply = await chat.send(word)
        assert detect_language(reply) == language, (word, reply)
        if reply.startswith(("شکایت", "شڪايت", "د شکایت")):
            await chat.send("مدد")  # leave the complaint's question
    # LANG UR still chooses Urdu.
    assert detect_language(await chat.send("LANG UR")) == "ur"
    assert detect_language(await chat.send("مدد")) == "ur"
