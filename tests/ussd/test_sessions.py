"""Whole USSD sessions against the test registry: eligibility, payments from the registered phone
and with a code from another, complaints with and without a call back, tracking, navigation,
languages and timeouts."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from api.registry.models import Contact, Grievance
from bot.dialogue.ussd import UssdStore
from bot.segments import measure
from tests.conftest import (
    ELIGIBLE,
    ELIGIBLE_PHONE,
    ELIGIBLE_WIFE,
    NOT_ELIGIBLE,
    NOT_ELIGIBLE_PHONE,
    UNDER_REVIEW,
    UNDER_REVIEW_PHONE,
)
from tests.ussd.conftest import Dial, delivered, delivered_code

HELPER_PHONE = "+923219876543"
TICKET = re.compile(r"G-[0-9A-Z]{6}")

MAIN_MENU = (
    "CON BISP menu:\n1 Check eligibility\n2 My payment\n3 File a complaint\n"
    "4 Complaint status\n5 Language"
)


def unmasked(screen: str, cnic: str) -> bool:
    """True when `screen` shows the CNIC `cnic` in full, with or without its dashes."""
    return cnic in screen.replace("-", "")


async def english(phone: Dial) -> Dial:
    """Choose English on the first screen (a new contact sees the language menu)."""
    first = await phone.dial()
    assert first.startswith("CON ") and "1 English\n2 اردو\n3 Roman Urdu" in first
    assert await phone.send("1") == MAIN_MENU
    return phone


async def test_eligibility_session(dial, registry):
    phone = await english(dial(NOT_ELIGIBLE_PHONE))
    assert await phone.send("1") == "CON Enter the 13-digit CNIC number:\n0 Back"
    answer = await phone.send(ELIGIBLE_WIFE)
    assert answer == (
        "END CNIC 35202-*******-2 is eligible for BISP. To see your payment, dial again and "
        "choose My payment."
    )
    assert phone.ended


async def test_payment_from_a_phone_shared_by_two(dial, registry):
    phone = await english(dial(ELIGIBLE_PHONE))
    choose = await phone.send("2")
    assert choose == (
        "CON Several CNICs use this phone. Which one?\n1 35202-***4567-1\n2 35202-***4567-2\n0 Back"
    )
    schedule = await phone.send("2")
    assert schedule == (
        "END 35202-***4567-2 Kafaalat 2026-Q4: Rs 13,500, ready to collect\n"
        "15 Nov - 15 Dec 2026\nGovt Girls High School, Ichhra (campsite)"
    )
    await phone.dial()
    await phone.send("2")
    assert await phone.send("1") == "END CNIC 35202-***4567-1: no payments are recorded yet."


@pytest.mark.parametrize("registered", [NOT_ELIGIBLE_PHONE, UNDER_REVIEW_PHONE])
async def test_payment_from_a_phone_registered_to_one_person(dial, registry, registered):
    phone = await english(dial(registered))
    answer = await phone.send("2")
    assert answer.startswith("END CNIC ") and "no payments are recorded yet" in answer


async def test_payment_with_a_code_from_another_phone(dial, app, settings, registry, db):
    helper = await english(dial(HELPER_PHONE))
    ask = await helper.send("2")
    assert ask.startswith("CON This phone is not registered for a CNIC.")
    sent = await helper.send("35202 1234567 2")
    assert sent.startswith("CON We sent a 6-digit code by SMS to +92300****567")
    assert "35202-*******-2" in sent and sent.endswith("0 Back 00 Menu")
    code = await delivered_code(app, settings, ELIGIBLE_PHONE)
    wrong = "000000" if code != "000000" else "111111"
    retry = await helper.send(wrong)
    assert retry.startswith("CON That code is not right. You can try 4 more times.")
    assert (await helper.send("12")).startswith("CON Enter the 6 digits of the code")
    schedule = await helper.send(code)
    assert schedule.startswith("END 35202-*******-2 Kafaalat 2026-Q4: Rs 13,500, ready")
    # The verification is kept on the helper's contact for a while: no second code.
    await helper.dial()
    again = await helper.send("2")
    assert again.startswith("END 35202-*******-2 Kafaalat 2026-Q4")
    async with db.sessions() as s:
        contact = await s.scalar(
            select(Contact).where(Contact.channel == "ussd", Contact.address == HELPER_PHONE)
        )
    assert contact.verified_cnic == ELIGIBLE_WIFE


async def test_the_code_goes_out_in_the_persons_language(dial, app, settings, registry):
    helper = dial(HELPER_PHONE)
    await helper.dial()
    await helper.send("2")  # Urdu: screens in Roman Urdu, the code SMS in Urdu script
    await helper.send("2")
    await helper.send(ELIGIBLE_WIFE)
    code_sms = (await delivered(app, settings, ELIGIBLE_PHONE, "otp"))[-1]
    assert code_sms["language"] == "ur"
    assert measure(code_sms["body"]).encoding == "UCS-2", code_sms


async def test_complaint_with_a_call_back(dial, app, settings, registry, db):
    phone = await english(dial(ELIGIBLE_PHONE))
    await phone.send("3")
    category = await phone.send("2")
    assert category == (
        "CON What is the complaint about?\n1 payment not received\n2 money deducted by agent\n"
        "3 fingerprint not verified\n4 eligibility\n5 CNIC or data correction\n6 other\n"
        "0 Back 00 Menu"
    )
    callback = await phone.send("2")
    assert callback == (
        "CON Should we call you back about this complaint?\n1 Yes, call me\n2 No\n0 Back 00 Menu"
    )
    filed = await phone.send("1")
    ticket = TICKET.search(filed).group(0)
    # Named by whose it is, as the family's shared phone names her (SPEC §3).
    assert filed.startswith(f"END Complaint {ticket} for CNIC 35202-***4567-2 is filed.")
    assert "We will call you back on this number" in filed
    assert not unmasked(filed, ELIGIBLE_WIFE)
    async with db.sessions() as s:
        grievance = await s.scalar(select(Grievance).where(Grievance.ticket_id == ticket))
    assert grievance.cnic == ELIGIBLE_WIFE
    assert grievance.category == "deduction_by_agent"
    assert grievance.callback_requested is True and grievance.description == ""
    assert grievance.channel == "ussd" and grievance.language == "en"
    # The screen vanishes once read: the number also comes by SMS.
    sms = await delivered(app, settings, ELIGIBLE_PHONE, "grievance_filed")
    assert len(sms) == 1 and ticket in sms[0]["body"] and sms[0]["channel"] == "sms"
    # Whose complaint it is, as the family's shared phone names her (SPEC §3).
    assert f"Complaint {ticket} for CNIC 35202-***4567-2 is filed." in sms[0]["body"]
    # Tracked from the same phone: the same name, not the husband's.
    await phone.dial()
    await phone.send("4")
    await phone.send("1")
    status = await phone.send(ticket)
    assert status.startswith(f"END Complaint {ticket} for CNIC 35202-***4567-2: received.")
    assert not unmasked(status, ELIGIBLE_WIFE)


async def test_complaint_without_a_call_back_names_its_category(dial, registry, db):
    phone = await english(dial(NOT_ELIGIBLE_PHONE))
    assert (await phone.send("3")).startswith("CON What is the complaint about?")
    await phone.send("1")
    filed = await phone.send("2")
    assert filed.startswith("END Complaint G-") and "We will answer by" in filed
    assert "for CNIC 42101-*******-3 is filed." in filed
    async with db.sessions() as s:
        grievance = await s.scalar(select(Grievance))
    assert grievance.callback_requested is False
    assert grievance.description == "payment not received"


async def test_complaint_for_someone_else_needs_their_code(dial, app, settings, registry):
    helper = await english(dial(HELPER_PHONE))
    await helper.send("3")
    sent = await helper.send(ELIGIBLE)
    assert sent.startswith("CON We sent a 6-digit code")
    code = await delivered_code(app, settings, ELIGIBLE_PHONE)
    assert (await helper.send(code)).startswith("CON What is the complaint about?")
    await helper.send("6")
    filed = await helper.send("2")
    # The helper's phone is no one's in the family: the usual mask names the husband.
    assert filed.startswith("END Complaint G-") and "for CNIC 35202-*******-1 is filed." in filed
    assert not unmasked(filed, ELIGIBLE)


async def test_track_a_complaint_by_number_and_from_the_list(dial, app, settings, registry):
    owner = await english(dial(NOT_ELIGIBLE_PHONE))
    await owner.send("3")
    await owner.send("1")
    ticket = TICKET.search(await owner.send("1")).group(0)

    await owner.dial()
    assert await owner.send("4") == (
        "CON Complaint status:\n1 Enter complaint number\n2 My complaints\n0 Back"
    )
    ask = await owner.send("1")
    assert ask == ("CON Enter the complaint number from your SMS, like G7K3M9Q:\n0 Back 00 Menu")
    bad = await owner.send("G-123")
    assert bad.startswith("CON That is not a complaint number.")
    # Typed on a keypad: no dash, lower case, a `*` for the dash.
    status = await owner.send(ticket.lower().replace("-", "*"))
    assert status.startswith(f"END Complaint {ticket} for CNIC 42101-*******-3: received.")
    assert not unmasked(status, NOT_ELIGIBLE)

    await owner.dial()
    await owner.send("4")
    mine = await owner.send("2")
    assert (
        mine
        == f"END CNIC 42101-*******-3 has 1 complaint:\n{ticket} payment not received: received"
    )

    # Someone else's ticket: the code goes to the owner's registered mobile.
    helper = await english(dial(HELPER_PHONE))
    await helper.send("4")
    await helper.send("1")
    sent = await helper.send(ticket)
    assert sent.startswith("CON We sent a 6-digit code by SMS to +92345****233")
    code = await delivered_code(app, settings, NOT_ELIGIBLE_PHONE)
    tracked = await helper.send(code)
    assert tracked.startswith(f"END Complaint {ticket} for CNIC 42101-*******-3: received.")
    assert not unmasked(tracked, NOT_ELIGIBLE)


async def test_an_unknown_ticket_is_asked_again(dial, registry):
    phone = await english(dial(NOT_ELIGIBLE_PHONE))
    await phone.send("4")
    await phone.send("1")
    again = await phone.send("G-000000")
    assert again.startswith("CON No complaint has that number.")


async def test_back_and_home_navigation(dial, registry):
    phone = await english(dial(ELIGIBLE_PHONE))
    assert (await phone.send("3")).startswith("CON Several CNICs")
    assert await phone.send("0") == MAIN_MENU
    await phone.send("3")
    await phone.send("2")
    assert (await phone.send("0")).startswith("CON Several CNICs")  # back one screen
    assert (await phone.send("1")).startswith("CON What is the complaint about?")
    await phone.send("4")
    assert (await phone.send("0")).startswith("CON What is the complaint about?")
    assert await phone.send("00") == MAIN_MENU  # home from two screens deep
    assert await phone.send("0") == MAIN_MENU  # nothing before the main menu
    assert await phone.send("9") == MAIN_MENU.replace(
        "CON BISP menu:", "CON Wrong number. Choose again:"
    )
    language = await phone.send("5")
    assert "1 English" in language and language.endswith("0 Back")
    assert await phone.send("0") == MAIN_MENU
    await phone.send("5")
    roman = await phone.send("3")
    assert roman.startswith("CON ") and "\n1 " in roman and measure(roman).encoding == "GSM-7"


@pytest.mark.parametrize(
    ("key", "language"), [("2", "ur"), ("4", "sd"), ("5", "ps"), ("6", "pa_Arab")]
)
async def test_arabic_script_languages_get_roman_urdu_screens(dial, registry, db, key, language):
    phone = dial(ELIGIBLE_PHONE)
    await phone.dial()
    screens = [await phone.send(key), await phone.send("2"), await phone.send("2")]
    assert screens[-1].startswith("END 35202-***4567-2 Kafaalat 2026-Q4")
    for body in screens:
        assert measure(body).encoding == "GSM-7", body
    async with db.sessions() as s:
        contact = await s.scalar(
            select(Contact).where(Contact.channel == "ussd", Contact.address == ELIGIBLE_PHONE)
        )
    assert contact.language == language


async def test_timeout_mid_session(dial, app, registry):
    phone = await english(dial(ELIGIBLE_PHONE))
    await phone.send("1")
    await app.state.runtime.redis.delete(UssdStore.key(phone.session_id))
    assert await phone.send(ELIGIBLE_WIFE) == "END This session has ended. Please dial again."
    assert (await phone.send("1")).startswith("CON Enter the 13-digit CNIC")  # a new session


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (
            "1",
            "END CNIC 17301-*******-2: your household is under review. No visit is needed; dial "
            "again after 30 days to check.",
        ),
        (
            "3",
            "END CNIC 17301-*******-2: aap ke gharane ka jaiza liya ja raha hai. Daftar aane ki "
            "zaroorat nahi; 30 din baad dobara dial kar ke dekhein.",
        ),
    ],
    ids=["en", "ur_Latn"],
)
async def test_a_household_under_review_is_told_to_dial_again(dial, registry, key, expected):
    """On USSD "check again" means dialling again: the SMS wording ("check again by SMS") names
    a channel the person has not used, with no number to send it to."""
    phone = dial(NOT_ELIGIBLE_PHONE)
    await phone.dial()
    await phone.send(key)
    await phone.send("1")
    assert await phone.send(UNDER_REVIEW) == expected
