"""Conversations over SMS that went wrong in the field: a mistyped code, a keyword followed by
words, a description sent where a number was asked for, Urdu punctuation, typographic quotes."""

from __future__ import annotations

from sqlalchemy import select

from api.registry.models import Grievance
from bot.segments import SmsCost, measure
from tests.api.test_sms_payments import HELPER_PHONE, Chat, delivered_code
from tests.conftest import ELIGIBLE_PHONE, ELIGIBLE_WIFE, NOT_ELIGIBLE, NOT_ELIGIBLE_PHONE


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


async def test_describing_the_problem_at_the_category_menu_keeps_the_complaint(client, registry):
    chat = Chat(client, NOT_ELIGIBLE_PHONE)
    await chat.send("LANG EN")
    assert "What is the complaint about?" in await chat.send("شکایت")
    for words in ("پیسے نہیں ملے 😢", "paise nahi mile", "9", "123456"):
        assert "Please reply with a number from 1 to 6." in await chat.send(words)
    assert "Please describe the problem" in await chat.send("1")
    assert "Reply 1 to file it" in await chat.send("paise nahi mile teen mahine se")
    again = "Reply 1 to file the complaint or 2 to cancel."
    assert again in await chat.send("paise nahi mile")
    assert again in await chat.send("3")
    assert "is filed" in await chat.send("1")


async def test_a_command_at_a_menu_still_leaves_it(client, registry):
    chat = Chat(client, NOT_ELIGIBLE_PHONE)
    await chat.send("LANG EN")
    await chat.send("COMPLAINT")
    assert "PAY: payment" in await chat.send("HELP")
    await chat.send("COMPLAINT")
    assert "no payments are recorded yet" in await chat.send(f"PAY {NOT_ELIGIBLE}")
    assert "Sorry, we did not understand" in await chat.send("1")


async def test_a_number_not_on_the_person_menu_asks_again(client, registry):
    chat = Chat(client, ELIGIBLE_PHONE)
    await chat.send("LANG EN")
    assert "Several CNICs" in await chat.send("PAY")
    menu = await chat.send("3")
    assert "Several CNICs" in menu and "2) 35202-***4567-2" in menu
    assert "Rs 13,500" in await chat.send("2")


async def test_words_at_the_person_menu_of_a_complaint_ask_again(client, registry):
    chat = Chat(client, ELIGIBLE_PHONE, channel="whatsapp")
    await chat.send("LANG EN")
    assert "Several CNICs" in await chat.send("COMPLAINT")
    for answer in ("paise nahi mile", "3"):
        assert "Several CNICs" in await chat.send(answer)
    assert "What is the complaint about?" in await chat.send("2")


async def test_a_complaint_in_arabic_keyboard_letters_is_filed_as_written(client, registry, db):
    chat = Chat(client, NOT_ELIGIBLE_PHONE)
    await chat.send("LANG EN")
    assert "What is the complaint about?" in await chat.send("شكايت، پيسے نہيں ملے")
    await chat.send("1")
    assert "is filed" in await chat.send("1")
    async with db.sessions() as session:
        assert await session.scalar(select(Grievance.description)) == "پيسے نہيں ملے"


async def test_the_echoed_description_keeps_a_latin_confirmation_in_one_gsm7_segment(
    client, registry, db
):
    written = "agent took money “twice” – 2000\u00a0rs… 😢"
    for language, filed in (("EN", "is filed"), ("RU", "G-")):
        chat = Chat(client, NOT_ELIGIBLE_PHONE)
        await chat.send(f"LANG {language}")
        await chat.send("COMPLAINT")
        await chat.send("2")
        confirm = await chat.send(written)
        assert '"agent took money "twice" - 2000 rs..."' in confirm
        assert measure(confirm) == SmsCost("GSM-7", len(confirm), len(confirm), 1)
        assert filed in await chat.send("1")
    async with db.sessions() as session:
        stored = set(await session.scalars(select(Grievance.description)))
    assert stored == {written}


async def test_an_arabic_script_confirmation_keeps_the_emoji(client, registry):
    chat = Chat(client, NOT_ELIGIBLE_PHONE)
    await chat.send("LANG UR")
    await chat.send("COMPLAINT پیسے نہیں ملے “دو بار” 😢")
    assert '"دو بار" 😢' in await chat.send("1")
