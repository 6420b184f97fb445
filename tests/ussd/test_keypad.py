"""Keys as keypads and people type them: with the dial code's `#` or `*` beside them, in Urdu or
Arabic-Indic digits, with spaces. Each is the key itself, on every kind of screen."""

from __future__ import annotations

import pytest

from tests.conftest import ELIGIBLE_PHONE, ELIGIBLE_WIFE, NOT_ELIGIBLE_PHONE
from tests.ussd.conftest import Dial

COARSE_ELIGIBLE = (
    "END CNIC 35202-*******-2 is eligible for BISP. To see your payment, dial again and "
    "choose My payment."
)

#: From the main menu: a complaint for the second person of a shared phone, its category, back,
#: home, the language menu and Sindhi (Roman Urdu screens), English again, the eligibility
#: screen and back from a screen that takes a typed CNIC.
KEYS = ["3", "2", "6", "0", "00", "5", "4", "5", "1", "1", "0", "1", "00"]

URDU = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
ARABIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@pytest.mark.parametrize(
    "typed",
    [
        pytest.param(lambda key: f"{key}#", id="hash-after"),
        pytest.param(lambda key: f"#{key}#", id="hash-around"),
        pytest.param(lambda key: f"{key}*", id="star-after"),
        pytest.param(lambda key: key.translate(URDU), id="urdu-digits"),
        pytest.param(lambda key: key.translate(ARABIC) + "#", id="arabic-indic-digits-hash"),
        pytest.param(lambda key: f" {key} ", id="spaces"),
    ],
)
async def test_a_key_typed_any_way_is_the_key(dial, registry, typed):
    phone: Dial = dial(ELIGIBLE_PHONE)
    await phone.dial()
    await phone.send("1")  # English, remembered for the sessions below
    await phone.dial()
    plain = [await phone.send(key) for key in KEYS]
    assert plain[0].startswith("CON Several CNICs") and plain[-1].startswith("CON BISP menu:")
    await phone.dial()
    assert [await phone.send(typed(key)) for key in KEYS] == plain


async def test_the_language_menu_takes_a_languages_own_digits(dial, registry):
    """The one screen in Arabic script: its keys are the keypad's 0-9, and a Sindhi reader who
    types ۴ or ٤ gets Sindhi (read in Roman Urdu on USSD)."""
    phone: Dial = dial(ELIGIBLE_PHONE)
    first = await phone.dial()
    assert first.splitlines()[1:] == [
        "1 English",
        "2 اردو",
        "3 Roman Urdu",
        "4 سنڌي",
        "5 پښتو",
        "6 پنجابی",
    ]
    assert (await phone.send("٤#")).startswith("CON BISP ka menu:")


@pytest.mark.parametrize(
    "typed", [ELIGIBLE_WIFE, "35202-1234567-2", "35202*1234567*2#", "۳۵۲۰۲۱۲۳۴۵۶۷۲"]
)
async def test_a_cnic_typed_on_the_main_menu_is_looked_up(dial, registry, typed):
    """As people send a CNIC to 8171, they type it on the first menu: its eligibility, not
    "Wrong number"; `0` then asks for another CNIC."""
    phone: Dial = dial(NOT_ELIGIBLE_PHONE)
    await phone.dial()
    await phone.send("1")  # English
    await phone.dial()
    assert await phone.send(typed) == COARSE_ELIGIBLE
    mine: Dial = dial(ELIGIBLE_PHONE)
    await mine.dial()
    await mine.send("1")
    await mine.dial()
    own = await mine.send(typed)
    assert own.startswith("CON CNIC 35202-*******-2 is eligible: Kafaalat, Taleemi Wazaif."), own
    assert (await mine.send("0")).startswith("CON Enter the 13-digit CNIC number:")


async def test_a_dial_string_with_a_cnic_answers_at_once(dial, registry):
    """`*262*<CNIC>#` arrives as a first hit with the CNIC as its text."""
    phone: Dial = dial(NOT_ELIGIBLE_PHONE)
    await phone.dial()
    await phone.send("1")  # English
    phone.session_id, phone.text = "ATUid_dialstring", ELIGIBLE_WIFE
    assert await phone.repost() == COARSE_ELIGIBLE


#: The coarse answer in the default language's USSD form (Urdu reads Roman Urdu on USSD).
COARSE_ELIGIBLE_DEFAULT = (
    "END CNIC 35202-*******-2 BISP ke liye ahal hai. Payment dekhne ke liye dobara dial karein "
    "aur 'Meri payment' chunein."
)


@pytest.mark.parametrize("typed", [ELIGIBLE_WIFE, "۳۵۲۰۲۱۲۳۴۵۶۷۲"])
async def test_a_dial_string_with_a_cnic_answers_a_phone_with_no_language(dial, registry, typed):
    """`*262*<CNIC>#` from a phone that never chose a language: its first screen would be the
    language menu, but the CNIC is answered at once, in the default language as a bare CNIC by
    SMS is (SPEC §2), and no language is chosen for the phone by it."""
    phone: Dial = dial(NOT_ELIGIBLE_PHONE)
    phone.session_id, phone.text = "ATUid_dialstring", typed
    assert await phone.repost() == COARSE_ELIGIBLE_DEFAULT
    assert (await phone.dial()).startswith("CON Zaban:\n1 English")


async def test_a_cnic_typed_on_the_first_language_menu_is_looked_up(dial, registry):
    """Dialled `*262#`, the language menu, and a CNIC typed there: its eligibility; `0` asks for
    another CNIC, as after one typed on the main menu, and `0` again is the language menu. The
    language menu reached from the main menu stays a menu."""
    phone: Dial = dial(NOT_ELIGIBLE_PHONE)
    assert (await phone.dial()).startswith("CON Zaban:")
    assert await phone.send(ELIGIBLE_WIFE) == COARSE_ELIGIBLE_DEFAULT
    mine: Dial = dial(ELIGIBLE_PHONE)  # her own phone: her programmes, a screen that goes on
    await mine.dial()
    own = await mine.send(ELIGIBLE_WIFE)
    assert own.startswith("CON CNIC 35202-*******-2 ahal hai: Kafaalat"), own
    assert (await mine.send("0")).startswith("CON 13 hindson ka CNIC number likhein:")
    assert (await mine.send("0")).startswith("CON Zaban:\n1 English")
    await mine.send("1")  # English
    assert (await mine.send("5")).startswith("CON Language:")  # from the main menu
    assert (await mine.send(ELIGIBLE_WIFE)).startswith("CON Language:")


async def test_a_dial_string_of_a_key_and_a_cnic_walks_the_first_screen(dial, registry):
    """`*262*1*<CNIC>#` from a phone with no language: the steps answer the screens in turn, the
    first being the language menu (1 English), then the CNIC on the main menu."""
    phone: Dial = dial(NOT_ELIGIBLE_PHONE)
    phone.session_id, phone.text = "ATUid_dialstring", f"1*{ELIGIBLE_WIFE}"
    assert await phone.repost() == COARSE_ELIGIBLE


async def test_digits_that_are_no_cnic_on_the_main_menu_are_a_wrong_number(dial, registry):
    phone: Dial = dial(NOT_ELIGIBLE_PHONE)
    await phone.dial()
    await phone.send("1")
    await phone.dial()
    assert (await phone.send("352021234567")).startswith("CON Wrong number. Choose again:")
