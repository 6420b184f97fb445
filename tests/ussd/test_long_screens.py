"""The longest screens the registry can give, through the webhook: a place name as long as the
importer takes (120 characters), five persons on one phone, a person with many complaints."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update

from api.registry.models import Household, Payment, Person
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


async def complain(phone: Dial, person: str, category: str) -> None:
    """File one complaint without a call back, for the `person`-th CNIC of a shared phone."""
    await phone.dial()
    for key in ("3", person, category):
        assert (await phone.send(key)).startswith("CON ")
    assert (await phone.send("2")).startswith("END ")


@pytest.mark.parametrize(
    ("key", "three", "one"),
    [
        (
            "1",
            "END CNIC 35202-***4567-2: 3 complaints, the latest:\nG-",
            "END CNIC 35202-***4567-1 has 1 complaint:\nG-",
        ),
        (
            "3",
            "END CNIC 35202-***4567-2 ki 3 shikayaat, taaza tareen:\nG-",
            "END CNIC 35202-***4567-1 ki 1 shikayat:\nG-",
        ),
    ],
    ids=["en", "ur_Latn"],
)
async def test_my_complaints_on_a_shared_phone_name_the_cnic_and_say_there_are_more(
    dial, registry, monkeypatch, key, three, one
):
    """Which of the phone's CNICs a list belongs to (SPEC §3), and that it shows only the
    latest two of three."""
    monkeypatch.setenv("RABTA_LIMIT_SENDER", "100/hour")
    phone: Dial = dial(ELIGIBLE_PHONE)
    await phone.dial()
    await phone.send(key)
    for category in ("1", "2", "6"):
        await complain(phone, "2", category)
    await complain(phone, "1", "4")
    await phone.dial()
    for step in ("4", "2"):
        await phone.send(step)
    wife = await phone.send("2")
    assert wife.startswith(three), wife
    assert wife.count("\nG-") == 2
    await phone.dial()
    for step in ("4", "2"):
        await phone.send(step)
    husband = await phone.send("1")
    assert husband.startswith(one), husband


#: A phone shared by nine persons of one household (the registry sets no limit).
CROWDED_PHONE = "+923005555555"
NINE = [f"3210{i}1234567{i}" for i in range(1, 10)]


@pytest.fixture
async def nine_on_one_phone(registry):
    async with registry.transaction() as session:
        session.add(
            Household(
                household_id="HH-PB-0009",
                pmt_score=10,
                province="Punjab",
                district="Muzaffargarh",
                tehsil="Kot Addu",
                survey_date=dt.date(2021, 1, 1),
                status="active",
            )
        )
        await session.flush()
        session.add_all(
            Person(
                cnic=cnic,
                household_id="HH-PB-0009",
                full_name="Allah Rakhi",
                gender="F",
                birth_date=dt.date(1980, 1, 1),
                relation="member",
                mobile=CROWDED_PHONE,
                cnic_expiry=dt.date(2030, 1, 1),
            )
            for cnic in NINE
        )
    return registry


@pytest.mark.parametrize(
    ("key", "more"), [("1", "98 More"), ("3", "98 Aur")], ids=["en", "ur_Latn"]
)
async def test_every_person_of_a_crowded_phone_can_be_chosen(dial, nine_on_one_phone, key, more):
    """Nine CNICs on one phone: the "which CNIC?" screen lists them by pages behind `98 More`,
    each whole with `0 Back`, rather than cut off after the seventh."""
    phone: Dial = dial(CROWDED_PHONE)
    await phone.dial()
    await phone.send(key)
    await phone.send("4")
    first = await phone.send("2")
    lines = first.splitlines()
    assert [line.split()[0] for line in lines[1:-1]] == ["1", "2", "3", "4", "5", "98"], first
    assert lines[-2] == more and lines[-1].startswith("0 ") and not first.endswith(".."), first
    second = await phone.send("98")
    assert "\n6 32106-***4567-6\n" in second and "\n9 32109-***4567-9\n" in second, second
    assert "\n1 " not in second and not second.endswith(".."), second
    assert "\n1 32101-***4567-1\n" in await phone.send("98")  # round to the first page
    await phone.send("98")
    last = await phone.send("9")
    assert last.startswith("END CNIC 32109-***4567-9"), last
