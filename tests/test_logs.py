"""Logs never hold a full CNIC, phone number or OTP (SPEC §3)."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.logs import _mask_all, install_masking, mask_sensitive


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("cnic 3520212345671", "cnic 35202-*******-1"),
        ("cnic 35202-1234567-1 ok", "cnic 35202-*******-1 ok"),
        ("from +923001234567", "from +92300****567"),
        ("from 03001234567", "from +92300****567"),
        ("from whatsapp:+923001234567", "from whatsapp:+92300****567"),
        ("code 493021 sent", "code ****** sent"),
        ("id 42 took 12 ms", "id 42 took 12 ms"),
    ],
)
def test_mask_sensitive(raw, masked):
    assert mask_sensitive(raw) == masked


def test_records_are_masked_whoever_logs_them(caplog):
    install_masking()
    with caplog.at_level(logging.INFO):
        logging.getLogger("any.library").info(
            "user %s phone %s otp %s", "3520212345671", "+923001234567", "123456"
        )
    text = caplog.text
    assert "3520212345671" not in text and "+923001234567" not in text and "123456" not in text
    assert "35202-*******-1" in text


@settings(max_examples=400)
@given(
    st.lists(
        st.one_of(
            st.text(alphabet="0123456789", min_size=1, max_size=14),
            st.sampled_from(["-", " ", "+", ":", "bot", "0092", "+92", "03", "x", "۳", "\n"]),
            st.text(max_size=4),
        ),
        max_size=12,
    ).map("".join)
)
def test_the_quick_pass_masks_exactly_what_the_full_one_does(text):
    """Text without six digits in a row, five and a dash and a digit, or `bot` and a digit is
    passed through unread: the patterns could match nothing in it."""
    assert mask_sensitive(text) == _mask_all(text)
