"""The verification messages fit every path that asks for a code: a payment, a complaint and a
TRACK all send the same code and read the same replies, so none of them names one keyword."""

from __future__ import annotations

import pytest

from bot.channels.base import Reply
from bot.dialogue.keywords import Intent, parse
from bot.i18n import LANGUAGES

#: The replies every verification path can end in, with their data.
SHARED = [
    ("verify/wait", {"seconds": 59, "cnic": "35202-*******-2"}),
    ("verify/exhausted", {}),
    ("verify/expired", {}),
]
CHANNELS = ("sms", "whatsapp", "telegram")


@pytest.mark.parametrize(("name", "context"), SHARED)
def test_no_shared_verification_reply_sends_the_person_to_one_keyword(renderer, name, context):
    for language in LANGUAGES:
        for channel in CHANNELS:
            text = renderer.render([Reply(name, context)], language=language, channel=channel).text
            # Each word as a message: none is the payment keyword or one of its aliases.
            words = text.replace(".", " ").replace("۔", " ").split()
            assert all(parse(word).intent is not Intent.PAY for word in words), (language, text)


def test_the_code_sms_does_not_say_it_is_for_a_payment(renderer):
    context = {"code": "123456", "minutes": 5}
    text = renderer.render_text("otp/code", context, language="en", channel="sms")
    assert "123456" in text and "payment" not in text.lower()
