"""Conversations over SMS that went wrong in the field: a mistyped code, a keyword followed by
words, a description sent where a number was asked for, Urdu punctuation, typographic quotes."""

from __future__ import annotations

from tests.api.test_sms_payments import HELPER_PHONE, Chat, delivered_code
from tests.conftest import ELIGIBLE_PHONE, ELIGIBLE_WIFE, NOT_ELIGIBLE_PHONE


async def test_a_mistyped_code_is_a_wrong_try_and_the_code_stays_pending(
    client, app, settings, registry
):
    helper = Chat(client, HELPER_PHONE)
    await helper.send("LANG EN")
    assert "we sent a 6-digit code" in await helper.send(f"PAY {ELIGIBLE_WIFE}")
    code = await delivered_code(app, settings, ELIGIBLE_PHONE)
    assert "You can try 4 more times" in await helper.send(code[:5])
    assert "You can try 3 more times" in await helper.send(code + "9")
    assert "Kafaalat 2026-Q4: Rs 13,500" in await helper.send(code)


async def test_a_keyword_while_a_code_is_pending_still_works(client, registry):
    helper = Chat(client, HELPER_PHONE)
    await helper.send("LANG EN")
    await helper.send(f"PAY {ELIGIBLE_WIFE}")
    assert "PAY: payment" in await helper.send("HELP")


async def test_pay_followed_by_words_is_a_bare_pay(client, registry):
    registered = Chat(client, NOT_ELIGIBLE_PHONE)
    await registered.send("LANG EN")
    assert "no payments are recorded yet" in await registered.send("paise nahi mile")
    helper = Chat(client, HELPER_PHONE)
    await helper.send("LANG EN")
    for words in ("pay kab milega", "پیسے نہیں ملے"):
        assert "This phone is not registered for a CNIC" in await helper.send(words)


async def test_pay_followed_by_digits_that_are_no_cnic_is_not_a_cnic(client, registry):
    helper = Chat(client, HELPER_PHONE)
    await helper.send("LANG EN")
    assert "That is not a CNIC" in await helper.send("PAY 35202-12345")
