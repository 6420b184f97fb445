"""SPEC §5.1: eligibility by CNIC gives anyone the coarse status, and the person themself also
the programmes they are enrolled in and their state: asked from their registered mobile, or in a
conversation verified for them."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from api.registry.models import Enrollment
from tests.api.test_sms_payments import Chat, delivered_code
from tests.conftest import ELIGIBLE_PHONE, ELIGIBLE_WIFE

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
