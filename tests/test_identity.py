"""CNIC and phone handling: normalisation, validation, formatting, masking."""

from __future__ import annotations

import hypothesis
import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.identity import (
    Cnic,
    InvalidCnic,
    InvalidPhone,
    is_pakistani_mobile,
    mask_phone,
    normalise_phone,
    normalise_text,
)

URDU = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
ARABIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@pytest.mark.parametrize(
    "text",
    [
        "3520212345671",
        "35202-1234567-1",
        "35202 1234567 1",
        "35202.1234567.1",
        " 35202–1234567—1 ",
        "۳۵۲۰۲-۱۲۳۴۵۶۷-۱",
        "٣٥٢٠٢١٢٣٤٥٦٧١",
        "\u202b35202-1234567-1\u202c",
        "\u200e3520212345671\u200f",
        "35202\u200b1234567\u200d1",
        "３５２０２１２３４５６７１",  # full-width digits, NFKC folds them
    ],
)
def test_cnic_accepts_the_ways_people_type_it(text):
    cnic = Cnic.parse(text)
    assert cnic.digits == "3520212345671"
    assert cnic.formatted == "35202-1234567-1"
    assert cnic.masked == "35202-*******-1"
    assert str(cnic) == "35202-*******-1"
    assert cnic.gender == "M" and cnic.province_code == 3


@pytest.mark.parametrize(
    "text",
    [
        "",
        "352021234567",
        "35202123456712",
        "0520212345671",
        "8520212345671",
        "9520212345671",
        "35202-1234567-X",
        "abcdefghijklm",
        "😀",
        "3520212345671😀",
        "35202/1234567/1",
    ],
)
def test_cnic_rejects_what_is_not_one(text):
    with pytest.raises(InvalidCnic):
        Cnic.parse(text)


def test_gender_follows_the_last_digit():
    assert Cnic.parse("3520212345672").gender == "F"


cnic_digits = st.from_regex(r"[1-7][0-9]{12}", fullmatch=True)
separators = st.sampled_from(["", "-", " ", ".", "–", "\u200f", "\u2066"])


@given(cnic_digits, separators, separators, st.sampled_from([None, URDU, ARABIC]))
def test_any_spelling_of_a_cnic_parses_to_its_digits(digits, sep1, sep2, script):
    text = f"{digits[:5]}{sep1}{digits[5:12]}{sep2}{digits[12]}"
    if script:
        text = text.translate(script)
    assert Cnic.parse(text).digits == digits


@given(st.text(max_size=40))
def test_parse_never_fails_with_anything_but_invalid_cnic(text):
    try:
        cnic = Cnic.parse(text)
    except InvalidCnic:
        return
    assert len(cnic.digits) == 13 and cnic.digits.isascii()


def test_normalise_text_strips_invisible_marks_and_converts_digits():
    assert normalise_text("\u200f۱۲٣\u2069 ") == "123"


@pytest.mark.parametrize(
    ("text", "e164"),
    [
        ("+923001234567", "+923001234567"),
        ("03001234567", "+923001234567"),
        ("0300-1234567", "+923001234567"),
        ("00923001234567", "+923001234567"),
        ("923001234567", "+923001234567"),  # Telegram contacts come without the plus
        ("whatsapp:+923001234567", "+923001234567"),
        ("۰۳۰۰۱۲۳۴۵۶۷", "+923001234567"),
        ("+92 345 1112233", "+923451112233"),
        ("+15005550006", "+15005550006"),
    ],
)
def test_phone_normalisation(text, e164):
    assert normalise_phone(text) == e164


@pytest.mark.parametrize("text", ["", "BANK", "12345", "0300123", "+92300123456789", "whatsapp:"])
def test_phone_rejects_what_is_not_one(text):
    with pytest.raises(InvalidPhone):
        normalise_phone(text)


def _parsed(text: str) -> str | None:
    """What phonenumbers itself makes of a number, parsed in full: E.164, or None if invalid."""
    try:
        number = phonenumbers.parse(text, "PK")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@hypothesis.settings(max_examples=2000)
@given(
    st.one_of(
        # Near Pakistani mobiles: every operator prefix and length around the right one.
        st.builds(
            lambda prefix, rest: "+923" + prefix + rest,
            st.text("0123456789", min_size=2, max_size=2),
            st.text("0123456789", min_size=5, max_size=9),
        ),
        st.builds(lambda rest: "+92" + rest, st.text("0123456789", min_size=6, max_size=13)),
        st.from_regex(r"\+92[0-9٠-٩ ]{8,12}", fullmatch=True),
    )
)
def test_the_gateways_form_is_taken_as_phonenumbers_takes_it(text):
    """A sender already in E.164 skips the full parse: what comes out must be what the full
    parse says, for valid and invalid numbers alike."""
    normalise_phone.cache_clear()
    try:
        ours: str | None = normalise_phone(text)
    except InvalidPhone:
        ours = None
    assert ours == _parsed(normalise_text(text))


def test_pakistani_mobile_and_masking():
    assert is_pakistani_mobile("+923001234567")
    assert not is_pakistani_mobile("+924235761234")  # a Lahore landline
    assert not is_pakistani_mobile("+15005550006")
    assert mask_phone("+923001234567") == "+92300****567"
