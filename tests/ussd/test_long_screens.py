"""The longest screens the registry can give, through the webhook: a place name as long as the
importer takes (120 characters), five persons on one phone, a person with many complaints."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update

from api.registry.models import Payment
from tests.conftest import ELIGIBLE_PHONE
from tests.ussd.conftest import Dial

#: As long as `payments.place` (and the CSV importer) allows.
PLACE_120 = (
    "Government Girls Higher Secondary School No. 2, Muzaffargarh Road, "
    "near the old Ghalla Mandi, Tehsil Kot Addu, Distt. MG"
)


@pytest.fixture
async def long_place(registry):
    assert len(PLACE_120) == 120
    async with registry.transaction() as session:
        await session.execute(
            update(Payment)
            .where(Payment.payment_id == "PAY-0002")
            .values(place=PLACE_120, window_end=dt.date(2027, 1, 31))
        )
    return registry


@pytest.mark.parametrize(
    ("key", "status"),
    [
        ("1", "ready to collect"),
        ("2", "wusooli ke liye tayyar"),
        ("3", "wusooli ke liye tayyar"),
        ("4", "wusooli ke liye tayyar"),
    ],
    ids=["en", "ur", "ur_Latn", "sd"],
)
async def test_a_payment_screen_too_long_is_cut_in_the_persons_language(
    dial, long_place, key, status
):
    """A screen that does not fit even in its compact form is cut, in the session's language:
    never switched to English for a Roman Urdu reader."""
    phone: Dial = dial(ELIGIBLE_PHONE)
    await phone.dial()
    await phone.send(key)
    await phone.send("2")
    body = await phone.send("2")
    assert body.startswith("END 35202-***4567-2 Kafaalat 2026-Q4: Rs 13,500, " + status), body
    assert body.endswith("..") and PLACE_120[:50] in body
