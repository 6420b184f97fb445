"""Logs never hold a full CNIC, phone number or OTP (SPEC §3)."""

from __future__ import annotations

import logging

import pytest

from api.logs import install_masking, mask_sensitive


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
