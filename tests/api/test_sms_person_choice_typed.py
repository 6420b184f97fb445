"""At the "which CNIC?" menu of PAY, the person types the CNIC itself instead of its number, as
a phone without the menu's numbers in view does: that CNIC's payments, as the complaint menu
takes a typed CNIC for its complaint. A CNIC that is not on the menu is a new question (its
eligibility), and sends no code to anyone."""

from __future__ import annotations

import pytest

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
