"""Whole Telegram conversations through the webhook: eligibility, payments with and without
verification (contact card, one-time code), language changes, and buttons that keep the
person's language."""

from __future__ import annotations

import pytest

from tests.api.test_sms_payments import delivered_code
from tests.conftest import (
    ELIGIBLE,
    ELIGIBLE_PHONE,
    ELIGIBLE_WIFE,
    NOT_ELIGIBLE,
    NOT_ELIGIBLE_PHONE,
    NOT_FOUND,
    UNDER_REVIEW,
)
from tests.telegram.conftest import TelegramChat, buttons, payload

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


async def test_eligibility_conversation(tg_client, fake_api, registry):
    chat = TelegramChat(tg_client, fake_api)
    assert "Send your CNIC to check eligibility" in await chat.send("/lang en") + await chat.send(
        "/start"
    )
    assert "35202-*******-2 is eligible" in await chat.send("35202-1234567-2")
    assert "42101-*******-3 is not eligible" in await chat.send(NOT_ELIGIBLE)
    assert "17301-*******-2: your household is under review" in await chat.send(UNDER_REVIEW)
    assert "61101-*******-7 is not in the" in await chat.send(NOT_FOUND)
    assert "That is not a CNIC" in await chat.send("352021234567")
    assert "Sorry, we did not understand" in await chat.send("what is this")
    # No full CNIC ever reaches the chat.
    assert all(ELIGIBLE_WIFE not in m["text"] for m in fake_api.sent)


async def test_payments_after_sharing_own_contact_on_a_shared_phone(tg_client, fake_api, registry):
    chat = TelegramChat(tg_client, fake_api)
    await chat.send("LANG EN")
    # Before: no phone, so PAY asks for one and offers the contact button.
    assert "This phone is not registered" in await chat.send("PAY")
    assert chat.last_markup()["keyboard"][0][0]["request_contact"] is True
    saved = await chat.post(chat.user.contact(ELIGIBLE_PHONE.removeprefix("+")))
    assert "your number is saved" in saved[0]["text"]
    menu = await chat.send("PAY")
    assert "Several CNICs are registered to this phone" in menu
    people = buttons(chat.last_markup())
    assert people == [
        ("35202-***4567-1", f"PAY {ELIGIBLE}"),
        ("35202-***4567-2", f"PAY {ELIGIBLE_WIFE}"),
    ]
    schedule = await chat.press(f"PAY {ELIGIBLE_WIFE}")
    assert "Kafaalat 2026-Q4: Rs 13,500" in schedule
    assert "Govt Girls High School, Ichhra" in schedule
    assert "no payments are recorded yet" in await chat.press(f"PAY {ELIGIBLE}")


async def test_payments_after_sharing_own_contact_of_a_one_person_phone(
    tg_client, fake_api, registry
):
    chat = TelegramChat(tg_client, fake_api)
    await chat.send("LANG EN")
    await chat.share(NOT_ELIGIBLE_PHONE)
    assert "42101-*******-3: no payments are recorded yet" in await chat.send("PAY")


async def test_someone_elses_contact_verifies_nothing(tg_app, tg_client, fake_api, registry):
    chat = TelegramChat(tg_client, fake_api)
    await chat.send("LANG EN")
    assert "someone else's number" in await chat.share(ELIGIBLE_PHONE, own=False)
    assert "This phone is not registered" in await chat.send("PAY")
    answer = await chat.send(f"PAY {ELIGIBLE_WIFE}")
    assert "we sent a 6-digit code" in answer and "Rs 13,500" not in answer
    # Sharing someone else's card while the code is awaited proves nothing either.
    assert "someone else's number" in await chat.share(ELIGIBLE_PHONE, own=False)
    assert "Rs 13,500" not in await chat.send("PAY")


async def test_a_forwarded_own_contact_verifies_nothing(tg_client, fake_api, registry):
    chat = TelegramChat(tg_client, fake_api)
    await chat.send("LANG EN")
    update = chat.user.contact(ELIGIBLE_PHONE)
    update["message"]["forward_origin"] = {
        "type": "user",
        "date": 1795430000,
        "sender_user": {"id": chat.user.user_id, "is_bot": False, "first_name": "Shazia"},
    }
    assert "someone else's number" in (await chat.post(update))[0]["text"]


async def test_the_payload_contacts(tg_client, fake_api, registry):
    """The real payloads: Shazia's own card is +923001234567 (no '+'), Gul's is not hers."""
    chat = TelegramChat(tg_client, fake_api)
    await chat.send("LANG EN")
    assert "someone else's number" in (await chat.post(payload("someone_elses_contact")))[0]["text"]
    assert "This phone is not registered" in await chat.send("PAY")
    assert "your number is saved" in (await chat.post(payload("own_contact")))[0]["text"]
    assert "Several CNICs" in await chat.send("PAY")


async def test_payments_verified_by_code(tg_app, tg_client, fake_api, settings, registry):
    chat = TelegramChat(tg_client, fake_api)
    await chat.send("LANG EN")
    sent = await chat.send(f"PAY {ELIGIBLE_WIFE}")
    assert "we sent a 6-digit code" in sent and "+92300****567" in sent
    # The code prompt also offers the contact button (the registered phone's own card works).
    assert chat.last_markup()["keyboard"][0][0]["request_contact"] is True
    code = await delivered_code(tg_app, settings, ELIGIBLE_PHONE)
    assert "Kafaalat 2026-Q4: Rs 13,500" in await chat.send(code)
    assert "Rs 13,500" in await chat.send("PAY")  # verified for a while


async def test_code_prompt_answered_with_own_contact(tg_client, fake_api, registry):
    chat = TelegramChat(tg_client, fake_api)
    await chat.send("LANG EN")
    assert "we sent a 6-digit code" in await chat.send(f"PAY {ELIGIBLE_WIFE}")
    # Instead of typing the code, the person shares the registered phone's own contact card.
    assert "Kafaalat 2026-Q4: Rs 13,500" in await chat.share(ELIGIBLE_PHONE)


async def test_language_change_conversation(tg_client, fake_api, registry):
    chat = TelegramChat(tg_client, fake_api)
    assert "اہلیت کے لیے" in (await chat.post(payload("start_command")))[0]["text"]
    await chat.send("/lang")
    assert "Language set to English" in await chat.press("LANG EN")
    assert "35202-*******-2 is eligible" in await chat.send(ELIGIBLE_WIFE)
    await chat.press("menu:language")
    assert "Roman Urdu" in [label for label, _ in buttons(chat.last_markup())]
    assert "Ahliyat ke liye CNIC bhejein" in (await chat.press("LANG RU") + await chat.send("HELP"))
    assert "کے لیے اہل ہے" in (await chat.send("LANG UR") + await chat.send(ELIGIBLE_WIFE))


async def test_buttons_keep_the_guessed_language(tg_client, fake_api, registry):
    """Someone who writes Urdu and never chose a language stays in Urdu after pressing a
    button, though the button's reply (`PAY 3520…`) is Latin script."""
    chat = TelegramChat(tg_client, fake_api)
    await chat.send("مدد")
    await chat.share(ELIGIBLE_PHONE)
    await chat.send("ادائیگی")
    schedule = await chat.press(f"PAY {ELIGIBLE_WIFE}")
    # Kafaalat 2026-Q4: Rs 13,500, ready to collect: in Urdu
    assert schedule.splitlines()[0] == "35202-***4567-2 کفالت 2026-Q4: Rs 13,500، وصولی کے لیے تیار"


async def test_start_from_an_english_phone(tg_client, fake_api, registry):
    start = payload("start_command")
    start["message"]["from"]["language_code"] = "en-GB"
    sent = await TelegramChat(tg_client, fake_api).post(start)
    assert "Send your CNIC to check eligibility" in sent[0]["text"]
    labels = [label for label, _ in buttons(sent[0]["reply_markup"])]
    assert labels == ["My payment", "File a complaint", "Complaint status", "Language"]


async def test_a_photo_with_a_cnic_caption(tg_client, fake_api, registry):
    chat = TelegramChat(tg_client, fake_api)
    await chat.send("LANG EN")
    update = chat.user.text("")
    message = update["message"]
    del message["text"]
    message["photo"] = [{"file_id": "A", "file_unique_id": "a", "width": 90, "height": 90}]
    message["caption"] = ELIGIBLE_WIFE
    assert "is eligible" in (await chat.post(update))[0]["text"]
