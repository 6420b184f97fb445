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
    # The first words are the description: not asked for a second time.
    assert '"پیسے نہیں ملے"' in await chat.send("1")
    assert "What is the complaint about?" in await chat.send("COMPLAINT")
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


async def test_a_keyword_or_a_ticket_keeps_the_language_the_person_writes(
    client, app, settings, registry
):
    """Each language's help says "send TRACK", "PAY and the CNIC": typing them is no switch
    to English, and the code sent to the mother's phone is in the language her son writes."""
    chat = Chat(client, NOT_ELIGIBLE_PHONE)
    assert "Ahliyat ke liye CNIC bhejein" in await chat.send("madad")
    assert "par koi shikayat darj nahi" in await chat.send("TRACK")
    assert "Shikayat kis baare mein hai?" in await chat.send("COMPLAINT")
    assert "1 se 6 tak" in await chat.send("agent ne 500 rupay kaat liye")
    assert "Shikayat:" in await chat.send("2")
    filed = await chat.send("1")
    ticket = filed.split()[1]
    assert "darj ho gayi" in filed
    assert "Shikayat" in await chat.send(f"TRACK {ticket}")
    assert "ittilaat nahi aayengi" in await chat.send("STOP")
    son = Chat(client, HELPER_PHONE)
    assert "مینو" not in await son.send("میرے پیسے کب ملیں گے")
    assert "کے رجسٹرڈ موبائل" in await son.send(f"PAY {ELIGIBLE_WIFE}")
    assert "بی آئی ایس پی کوڈ" in await delivered_code_body(app, settings, ELIGIBLE_PHONE)


async def delivered_code_body(app, settings, phone: str) -> str:
    import json

    await delivered_code(app, settings, phone)
    lines = [json.loads(x) for x in settings.console_outbox.read_text().splitlines() if x]
    return [x["body"] for x in lines if x["to"] == phone][-1]


async def test_yes_and_no_in_words_answer_the_complaint_confirmation(client, registry, db):
    chat = Chat(client, NOT_ELIGIBLE_PHONE)
    await chat.send("LANG RU")
    for no in ("nahi", "ji nahi", "نہیں"):
        await chat.send("shikayat agent ne paise kaatay")
        await chat.send("2")
        assert "Mansookh ho gaya" in await chat.send(no)
    for yes in ("han", "Ji", "ہاں", "ok 👍"):
        await chat.send("shikayat agent ne paise kaatay")
        await chat.send("2")
        assert "darj ho gayi" in await chat.send(yes)
    await chat.send("shikayat agent ne paise kaatay")
    await chat.send("2")
    assert "mansookh karne ke liye 2" in await chat.send("pata nahi")
    async with db.sessions() as session:
        assert len(list(await session.scalars(select(Grievance.id)))) == 4


async def test_asking_to_file_is_no_description_and_the_words_that_follow_are(client, registry, db):
    chat = Chat(client, NOT_ELIGIBLE_PHONE)
    await chat.send("LANG EN")
    assert "What is the complaint about?" in await chat.send("shikayat darj karni hai")
    assert "Please reply with a number" in await chat.send("meri shikayat ka kya bana")
    assert "Please reply with a number" in await chat.send("mujhe paise nahi mile")
    assert "Please reply with a number" in await chat.send("han ji")
    assert "Please reply with a number" in await chat.send("زما شکایت څه شو")
    confirm = await chat.send("1")
    assert 'payment not received, "mujhe paise nahi mile"' in confirm
    assert "is filed" in await chat.send("1")
    async with db.sessions() as session:
        assert await session.scalar(select(Grievance.description)) == "mujhe paise nahi mile"


async def test_a_request_in_the_persons_own_words(client, registry):
    chat = Chat(client, NOT_ELIGIBLE_PHONE)
    await chat.send("LANG EN")
    assert "no payments are recorded yet" in await chat.send("mera paisa kab milay ga")
    assert "no payments are recorded yet" in await chat.send("ميرے پيسے کب مليں گے")
    assert "no payments are recorded yet" in await chat.send("زما پیسې کله راځي")
    assert "has no complaints" in await chat.send("meri shikayat ka kya bana")
    assert "What is the complaint about?" in await chat.send("mujhe shikayat darj karni hai")
    # At a menu, words are an answer to ask again, not a new request.
    assert "Please reply with a number" in await chat.send("mera paisa kab milay ga")
    son = Chat(client, HELPER_PHONE)
    await son.send("LANG EN")
    assert "we sent a 6-digit code" in await son.send(f"ammi ke paise {ELIGIBLE_WIFE}")
    # "band" inside a sentence is no STOP.
    assert "no more updates" not in await chat.send("HELP") + await chat.send("paisa band hai")


async def test_thanks_ok_or_a_question_mark_get_the_menu(client, registry):
    chat = Chat(client, NOT_ELIGIBLE_PHONE)
    await chat.send("LANG RU")
    for words in ("shukriya", "ok", "Thank you!", "?", "شکریہ", "han"):
        assert "Ahliyat ke liye CNIC bhejein" in await chat.send(words), words
    assert "Maazrat" in await chat.send("kuch aur")
