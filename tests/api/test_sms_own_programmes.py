"""SPEC §5.1: eligibility by CNIC gives anyone the coarse status, and the person themself also
the programmes they are enrolled in and their state: asked from their registered mobile, or in a
conversation verified for them."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from api.registry.models import Enrollment
from tests.api.test_sms_payments import Chat, delivered_code
from tests.conftest import ELIGIBLE_PHONE, ELIGIBLE_WIFE, NOT_ELIGIBLE, NOT_ELIGIBLE_PHONE

STRANGER = "+923451239876"


async def test_the_person_hears_their_programmes_and_a_stranger_does_not(client, registry):
    own = Chat(client, ELIGIBLE_PHONE)
    await own.send("LANG EN")
    mine = await own.send(ELIGIBLE_WIFE)
    assert "35202-*******-2 is eligible: Kafaalat, Taleemi Wazaif." in mine, mine

    stranger = Chat(client, STRANGER)
    await stranger.send("LANG EN")
    theirs = await stranger.send(ELIGIBLE_WIFE)
    assert "35202-*******-2 is eligible for BISP." in theirs, theirs
    assert "Kafaalat" not in theirs and "Taleemi" not in theirs


async def test_a_suspended_programme_says_so_and_one_left_is_not_named(client, registry):
    async with registry.transaction() as session:
        await session.execute(
            update(Enrollment)
            .where(Enrollment.cnic == ELIGIBLE_WIFE, Enrollment.programme == "taleemi_wazaif")
            .values(status="suspended")
        )
        await session.execute(
            update(Enrollment)
            .where(Enrollment.cnic == ELIGIBLE_WIFE, Enrollment.programme == "kafaalat")
            .values(status="exited")
        )
    own = Chat(client, ELIGIBLE_PHONE)
    await own.send("LANG EN")
    answer = await own.send(ELIGIBLE_WIFE)
    assert "is eligible: Taleemi Wazaif (suspended)." in answer, answer
    assert "Kafaalat" not in answer


async def test_with_every_programme_left_the_answer_is_the_one_anyone_gets(client, registry):
    async with registry.transaction() as session:
        await session.execute(
            update(Enrollment).where(Enrollment.cnic == ELIGIBLE_WIFE).values(status="exited")
        )
    own = Chat(client, ELIGIBLE_PHONE)
    await own.send("LANG EN")
    assert "35202-*******-2 is eligible for BISP." in await own.send(ELIGIBLE_WIFE)


@pytest.mark.parametrize(
    ("code", "programme"),
    [("UR", "کفالت"), ("RU", "Kafaalat"), ("SD", "ڪفالت"), ("PS", "کفالت"), ("PA", "کفالت")],
)
async def test_programmes_are_named_in_the_persons_language(client, registry, code, programme):
    own = Chat(client, ELIGIBLE_PHONE)
    await own.send(f"LANG {code}")
    answer = await own.send(ELIGIBLE_WIFE)
    assert programme in answer and "PAY" in answer, answer


async def test_a_helper_verified_by_code_hears_them_too(client, app, settings, registry):
    """A conversation verified for the CNIC by its code (a helper's phone) is the person's."""
    helper = Chat(client, STRANGER)
    await helper.send("LANG EN")
    await helper.send(f"PAY {ELIGIBLE_WIFE}")
    await helper.send(await delivered_code(app, settings, ELIGIBLE_PHONE))
    answer = await helper.send(ELIGIBLE_WIFE)
    assert "is eligible: Kafaalat, Taleemi Wazaif." in answer, answer


#: "Am I eligible?" without a CNIC, as people ask it in each language.
AM_I_ELIGIBLE = {
    "EN": "am I eligible?",
    "RU": "kya main ahal hoon",
    "UR": "کیا میں اہل ہوں",
    "SD": "ڇا مان اهل آهيان؟",
    "PS": "ایا زه وړ یم؟",
    "PA": "کی میں اہل آں؟",
}


@pytest.mark.parametrize("code", list(AM_I_ELIGIBLE))
async def test_am_i_eligible_from_the_registered_mobile_answers_for_its_person(
    client, registry, code
):
    """SPEC §3: from a registered phone a request without a CNIC is about the person registered
    to it, as PAY is: the answer their CNIC would get, naming it, in their language."""
    own = Chat(client, NOT_ELIGIBLE_PHONE)
    await own.send(f"LANG {code}")
    asked = await own.send(AM_I_ELIGIBLE[code])
    assert "42101-*******-3" in asked, asked
    assert asked == await own.send(NOT_ELIGIBLE)


async def test_am_i_eligible_in_roman_urdu_with_the_english_word(client, registry):
    own = Chat(client, NOT_ELIGIBLE_PHONE)
    await own.send("LANG RU")
    assert await own.send("kya mai eligible hoon") == await own.send(NOT_ELIGIBLE)


async def test_am_i_eligible_from_a_shared_phone_asks_whose(client, registry):
    own = Chat(client, ELIGIBLE_PHONE)
    await own.send("LANG EN")
    assert "Several CNICs use this phone" in await own.send("am I eligible?")
    mine = await own.send("2")
    assert "35202-*******-2 is eligible: Kafaalat, Taleemi Wazaif." in mine, mine


async def test_am_i_eligible_from_another_phone_asks_for_the_cnic(client, registry):
    stranger = Chat(client, STRANGER)
    await stranger.send("LANG EN")
    asked = await stranger.send("am I eligible?")
    assert asked.startswith("Send your CNIC to check eligibility."), asked


async def test_am_i_eligible_at_the_category_menu_asks_again(client, registry):
    """Words at a menu are an answer to ask again, not a new request (`Turn.starts_afresh`)."""
    own = Chat(client, NOT_ELIGIBLE_PHONE)
    await own.send("LANG EN")
    assert "What is the complaint about?" in await own.send("COMPLAINT")
    again = await own.send("am I eligible?")
    assert "42101" not in again and "eligible" not in again, again
