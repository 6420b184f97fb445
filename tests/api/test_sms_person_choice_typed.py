"""At the "which CNIC?" menu of PAY, the person types the CNIC itself instead of its number, as
a phone without the menu's numbers in view does: that CNIC's payments, as the complaint menu
takes a typed CNIC for its complaint. A CNIC that is not on the menu is a new question (its
eligibility), and sends no code to anyone. A phone of more than five persons is asked for the
CNIC by SMS, not shown a list over the prompt's segment budget."""

from __future__ import annotations

import datetime as dt

import pytest

from api.registry.models import Person
from bot.i18n_report import sms_budget
from bot.segments import measure
from tests.api.test_sms_payments import Chat
from tests.conftest import ELIGIBLE_PHONE, NOT_ELIGIBLE, NOT_ELIGIBLE_PHONE, codes_sent


@pytest.mark.parametrize(
    "typed",
    ["3520212345672", "35202-1234567-2", "۳۵۲۰۲-۱۲۳۴۵۶۷-۲", "PAY 3520212345672"],
    ids=["digits", "dashes", "urdu-digits", "with-pay"],
)
@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
async def test_a_cnic_of_the_menu_typed_gets_its_payments(client, registry, typed, channel):
    chat = Chat(client, ELIGIBLE_PHONE, channel=channel)
    await chat.send("LANG EN")
    assert "Reply with a number" in await chat.send("PAY")
    schedule = await chat.send(typed)
    for shown in ("35202-***4567-2", "Kafaalat 2026-Q4", "13,500", "Govt Girls High School"):
        assert shown in schedule, schedule


async def test_a_cnic_not_on_the_menu_is_its_eligibility(client, registry, db):
    chat = Chat(client, ELIGIBLE_PHONE)
    await chat.send("LANG EN")
    await chat.send("PAY")
    answer = await chat.send(NOT_ELIGIBLE)
    assert answer.startswith("CNIC 42101-*******-3 is not eligible for BISP."), answer
    assert await codes_sent(db, NOT_ELIGIBLE_PHONE) == 0


#: Six more persons registered to the eligible household's phone: eight on one phone, as a
#: joint family's (or a helper's) registry records can have.
MORE = [f"35202{7654300 + n:07d}{n % 10}" for n in range(6)]


@pytest.fixture
async def crowded(registry):
    async with registry.transaction() as session:
        session.add_all(
            Person(
                cnic=cnic,
                household_id="HH-PB-0001",
                full_name=f"Relative {n}",
                gender="F",
                birth_date=dt.date(1990 + n, 1, 1),
                relation="other",
                mobile=ELIGIBLE_PHONE,
                cnic_expiry=dt.date(2033, 1, 1),
            )
            for n, cnic in enumerate(MORE)
        )
    return registry


LANGUAGES = {"EN": "en", "RU": "ur_Latn", "UR": "ur", "SD": "sd", "PS": "ps", "PA": "pa_Arab"}


@pytest.mark.parametrize("code", LANGUAGES)
@pytest.mark.parametrize("keyword", ["PAY", "COMPLAINT"])
async def test_a_phone_of_eight_asks_for_the_cnic_within_the_budget(client, crowded, code, keyword):
    """Eight numbered CNICs cost two segments in English and three or four in Arabic script,
    over the prompt's budget (SPEC §2): the SMS asks for the CNIC itself instead."""
    chat = Chat(client, ELIGIBLE_PHONE)
    await chat.send(f"LANG {code}")
    prompt = await chat.send(keyword)
    cost = measure(prompt)
    assert cost.segments <= sms_budget("verify/choose_person", LANGUAGES[code]), (cost, prompt)
    answer = await chat.send("35202-1234567-2")
    if keyword == "PAY" and code == "EN":
        assert "Kafaalat 2026-Q4" in answer, answer
    if keyword == "COMPLAINT" and code == "EN":
        assert answer.startswith("What is the complaint about?"), answer
