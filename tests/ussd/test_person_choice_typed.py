"""At the "which CNIC?" screen of a phone several people share, the person types the CNIC itself
instead of its number (as SMS takes it): that person's payment, or their complaint. A CNIC that
is not on the screen is a wrong choice like any other, told nothing about that CNIC."""

from __future__ import annotations

import pytest

from tests.conftest import ELIGIBLE_PHONE, NOT_ELIGIBLE, NOT_ELIGIBLE_PHONE, codes_sent
from tests.ussd.conftest import Dial
from tests.ussd.test_long_screens import CROWDED_PHONE, NINE, nine_on_one_phone  # noqa: F401

CHOOSE = (
    "CON Several CNICs use this phone. Which one?\n1 35202-***4567-1\n2 35202-***4567-2\n0 Back"
)
WRONG = "CON Wrong number. Choose again:\n1 35202-***4567-1\n2 35202-***4567-2\n0 Back"

TYPED = pytest.mark.parametrize(
    "typed",
    ["3520212345672", "35202-1234567-2", "۳۵۲۰۲-۱۲۳۴۵۶۷-۲", "35202*1234567*2#"],
    ids=["digits", "dashes", "urdu-digits", "keypad-stars"],
)


async def shared_phone_at(dial, task: str) -> Dial:
    """The phone two people share, in English, at the "which CNIC?" screen of `task`."""
    phone: Dial = dial(ELIGIBLE_PHONE)
    await phone.dial()
    await phone.send("1")  # English
    assert await phone.send(task) == CHOOSE
    return phone


@TYPED
async def test_a_listed_cnic_typed_gets_its_payment(dial, registry, typed):
    phone = await shared_phone_at(dial, "2")
    schedule = await phone.send(typed)
    assert schedule.startswith("END 35202-***4567-2 Kafaalat 2026-Q4: Rs 13,500"), schedule


@TYPED
async def test_a_listed_cnic_typed_files_its_complaint(dial, registry, typed):
    phone = await shared_phone_at(dial, "3")
    category = await phone.send(typed)
    assert category.startswith("CON ") and "\n1 payment not received\n" in category, category
    await phone.send("1")
    filed = await phone.send("2")  # no call back
    assert filed.startswith("END Complaint G-") and "35202-***4567-2" in filed, filed


@pytest.mark.parametrize("task", ["2", "3"], ids=["payment", "complaint"])
async def test_a_cnic_not_on_the_screen_is_a_wrong_number(dial, registry, db, task):
    phone = await shared_phone_at(dial, task)
    assert await phone.send(NOT_ELIGIBLE) == WRONG
    assert await codes_sent(db, NOT_ELIGIBLE_PHONE) == 0
    assert (await phone.send("1")).startswith(("END CNIC 35202-***4567-1", "CON "))


@pytest.mark.usefixtures("nine_on_one_phone")
async def test_a_cnic_on_a_later_page_typed_is_chosen(dial):
    """Nine on one phone: the first page lists five, and the ninth typed out is still hers."""
    phone: Dial = dial(CROWDED_PHONE)
    await phone.dial()
    await phone.send("1")
    first = await phone.send("2")
    assert "\n98 More\n" in first and "32109" not in first, first
    assert (await phone.send(NINE[-1])).startswith("END CNIC 32109-***4567-9")
