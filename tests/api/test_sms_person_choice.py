"""The "which CNIC?" menu of a phone a household shares, as a Sindhi, Pashto or Punjabi mother
would read it: each member's CNIC recognisable, the prompt within its SMS budget."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from api.registry.models import Person
from bot.i18n_report import sms_budget
from bot.segments import measure
from tests.api.test_sms_payments import Chat
from tests.conftest import ELIGIBLE_PHONE, NOT_ELIGIBLE_PHONE

#: The wife's daughter: same district digits and gender digit as her mother (35202-…-2).
DAUGHTER = "3520276543212"


@pytest.fixture
async def household(registry):
    async with registry.transaction() as session:
        session.add(
            Person(
                cnic=DAUGHTER,
                household_id="HH-PB-0001",
                full_name="Sana Aslam",
                gender="F",
                birth_date=dt.date(2003, 4, 4),
                relation="daughter",
                mobile=ELIGIBLE_PHONE,
                cnic_expiry=dt.date(2033, 1, 1),
            )
        )
    return registry


@pytest.mark.parametrize("code", ["EN", "UR", "RU", "SD", "PS", "PA"])
async def test_the_menu_tells_mother_and_daughter_apart(client, household, code):
    chat = Chat(client, ELIGIBLE_PHONE)
    await chat.send(f"LANG {code}")
    menu = await chat.send("PAY")
    options = re.findall(r"[0-9]\) ([0-9*]{5}-[0-9*]{7}-[0-9])", menu)
    assert options == ["35202-***4567-1", "35202-***4567-2", "35202-***4321-2"], menu
    language = {"EN": "en", "UR": "ur", "RU": "ur_Latn", "SD": "sd", "PS": "ps", "PA": "pa_Arab"}
    assert measure(menu).segments <= sms_budget("verify/choose_person", language[code]), menu
    # The daughter's own answer, not her mother's.
    assert "13,500" not in await chat.send("3")  # the mother's Kafaalat tranche


async def test_each_answer_names_the_person_as_the_menu_did(client, household):
    """SPEC §3: every answer names its CNIC, so answers can be told apart. On this phone the
    mother's and the daughter's usual masks are both 35202-*******-2: the payment answers and
    the "no complaints" answer name each as the menu did."""
    chat = Chat(client, ELIGIBLE_PHONE)
    await chat.send("LANG EN")
    await chat.send("PAY")
    daughter = await chat.send("3")
    assert "35202-***4321-2" in daughter and "35202-*******-2" not in daughter, daughter
    mother = await chat.send("PAY 35202-1234567-2")
    assert "35202-***4567-2" in mother and "35202-*******-2" not in mother, mother
    # The conversation is now the mother's: TRACK answers for her, named the same way.
    track = await chat.send("TRACK")
    assert "35202-***4567-2" in track, track


async def test_a_phone_of_one_person_keeps_the_usual_mask(client, registry):
    chat = Chat(client, NOT_ELIGIBLE_PHONE)
    await chat.send("LANG EN")
    answer = await chat.send("PAY")
    assert re.search(r"[0-9]{5}-\*{7}-[0-9]", answer), answer
