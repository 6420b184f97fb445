"""The person's own eligibility on USSD (SPEC §5.1): asked from the CNIC's registered mobile, or
in a session verified for it, the eligibility screen names their programmes and offers their
payment; anyone else gets the coarse 8171 answer, as before."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update

from api.registry.models import Enrollment
from bot.segments import measure
from tests.conftest import ELIGIBLE, ELIGIBLE_PHONE, ELIGIBLE_WIFE, NOT_ELIGIBLE_PHONE
from tests.ussd.conftest import Dial, delivered_code

HELPER_PHONE = "+923219876543"
COARSE = (
    "END CNIC 35202-*******-2 is eligible for BISP. To see your payment, dial again and "
    "choose My payment."
)
SCHEDULE = "END 35202-***4567-2 Kafaalat 2026-Q4: Rs 13,500, ready to collect"


async def eligibility_of(phone: Dial, language_key: str, cnic: str) -> str:
    """A new session: the language chosen, `1 Check eligibility`, then the CNIC."""
    await phone.dial()
    await phone.send(language_key)
    assert (await phone.send("1")).startswith("CON ")
    return await phone.send(cnic)


async def test_from_the_registered_mobile_the_screen_names_the_programmes(dial, registry):
    phone: Dial = dial(ELIGIBLE_PHONE)
    answer = await eligibility_of(phone, "1", ELIGIBLE_WIFE)
    assert answer == (
        "CON CNIC 35202-*******-2 is eligible: Kafaalat, Taleemi Wazaif.\n"
        "1 My payment\n0 Back 00 Menu"
    )
    # Her payment without dialling again, and without "which CNIC?" on a shared phone.
    assert (await phone.send("1")).startswith(SCHEDULE)
    assert phone.ended


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("3", "CON CNIC 35202-*******-2 ahal hai: Kafaalat, Taleemi Wazaif (muattal).\n1 Meri"),
        ("4", "CON CNIC 35202-*******-2 ahal hai: Kafaalat, Taleemi Wazaif (muattal).\n1 Meri"),
    ],
    ids=["ur_Latn", "sd"],
)
async def test_a_programmes_state_is_told_in_the_sessions_language(dial, registry, key, expected):
    async with registry.transaction() as session:
        await session.execute(
            update(Enrollment)
            .where(Enrollment.cnic == ELIGIBLE_WIFE, Enrollment.programme == "taleemi_wazaif")
            .values(status="suspended")
        )
    answer = await eligibility_of(dial(ELIGIBLE_PHONE), key, ELIGIBLE_WIFE)
    assert answer.startswith(expected), answer
    assert measure(answer).encoding == "GSM-7"


async def test_anyone_else_gets_the_coarse_answer(dial, registry):
    answer = await eligibility_of(dial(NOT_ELIGIBLE_PHONE), "1", ELIGIBLE_WIFE)
    assert answer == COARSE


async def test_a_person_with_no_programme_left_gets_the_coarse_answer(dial, registry):
    """Nashonuma is the husband's only enrollment, and he has left it: nothing to name."""
    answer = await eligibility_of(dial(ELIGIBLE_PHONE), "1", ELIGIBLE)
    assert answer.startswith("END CNIC 35202-*******-1 is eligible for BISP."), answer


async def test_a_session_verified_by_code_names_them_too(dial, app, settings, registry):
    helper: Dial = dial(HELPER_PHONE)
    assert await eligibility_of(helper, "1", ELIGIBLE_WIFE) == COARSE
    await helper.dial()
    await helper.send("2")
    await helper.send(ELIGIBLE_WIFE)
    assert (await helper.send(await delivered_code(app, settings, ELIGIBLE_PHONE))).startswith(
        "END 35202-*******-2 Kafaalat 2026-Q4"
    )
    await helper.dial()
    await helper.send("1")
    answer = await helper.send(ELIGIBLE_WIFE)
    assert answer.startswith("CON CNIC 35202-*******-2 is eligible: Kafaalat, Taleemi Wazaif."), (
        answer
    )


#: Programmes a programmes file may add, with names as long as any there.
MORE_PROGRAMMES = [
    ("benazir_undergraduate_scholarship", "pending"),
    ("benazir_nashonuma_plus_programme", "suspended"),
    ("waseela_e_rozgar_skills_programme", "active"),
]


@pytest.fixture
async def many_programmes(registry):
    async with registry.transaction() as session:
        session.add_all(
            Enrollment(cnic=ELIGIBLE_WIFE, programme=p, status=s, since=dt.date(2024, 1, 1))
            for p, s in MORE_PROGRAMMES
        )
    return registry


@pytest.mark.parametrize(
    ("key", "count", "more"),
    [("1", "is eligible for 5 programmes.", "98 More"), ("3", "ahal hai: 5 programs.", "98 Aur")],
    ids=["en", "ur_Latn"],
)
async def test_too_many_to_name_are_counted_then_listed_page_by_page(
    dial, many_programmes, key, count, more
):
    phone: Dial = dial(ELIGIBLE_PHONE)
    answer = await eligibility_of(phone, key, ELIGIBLE_WIFE)
    assert answer.startswith(f"CON CNIC 35202-*******-2 {count}\n1 "), answer
    assert "\n2 " in answer and not answer.endswith("..")
    names: list[str] = []
    page = await phone.send("2")
    for _ in range(3):
        lines = page.splitlines()
        assert "35202-*******-2" in lines[0], page  # every page names the CNIC
        assert more in lines and not page.endswith(".."), page
        listed = lines[1 : lines.index(next(x for x in lines if x.startswith("1 ")))]
        if names and listed[0] == names[0]:
            break  # `98` on the last page came round to the first
        names += listed
        page = await phone.send("98")
    assert [n.split(" (")[0] for n in names] == [
        "Kafaalat",
        "Taleemi Wazaif",
        # Enrolled the same day: by programme, the same order on every page.
        "Benazir Nashonuma Plus Programme",
        "Benazir Undergraduate Scholarship",
        "Waseela E Rozgar Skills Programme",
    ], names
    assert (await phone.send("0")).startswith(f"CON CNIC 35202-*******-2 {count}")
    assert (await phone.send("1")).startswith("END 35202-***4567-2 Kafaalat 2026-Q4")


async def test_a_wrong_key_under_the_programmes_shows_them_again(dial, registry):
    phone: Dial = dial(ELIGIBLE_PHONE)
    answer = await eligibility_of(phone, "1", ELIGIBLE_WIFE)
    for junk in ("9", "*", "#", "", "۱۲"):
        assert await phone.send(junk) == answer
    assert (await phone.send("0")).startswith("CON Enter the 13-digit CNIC number:")
    assert (await phone.send(ELIGIBLE_WIFE)) == answer
    assert (await phone.send("00")).startswith("CON BISP menu:")


async def test_a_replayed_hit_gets_the_same_programmes_screen(dial, registry):
    phone: Dial = dial(ELIGIBLE_PHONE)
    answer = await eligibility_of(phone, "1", ELIGIBLE_WIFE)
    assert await phone.repost() == answer
    assert (await phone.send("1")).startswith(SCHEDULE)
