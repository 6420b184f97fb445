"""The log scan itself (tests/security/logscan.py), and the masking it relies on: what it flags,
what it lets through, and that an exception's text is masked for any handler."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from api.logs import install_masking
from tests.security.logscan import SessionLog, scan

LEAKS = [
    "INFO api.x: looked up 3520212345671",
    "INFO api.x: looked up 35202-1234567-1",
    "INFO api.x: sms to +923001234567",
    "INFO api.x: sms to 03001234567",
    "INFO api.x: sms to whatsapp:+923451112233",
    "INFO httpx: POST https://api.telegram.org/bot123456789:AAbbCCddEEffGGhhIIjjKKllMMnn/sendMessage",
    "INFO api.x: your code is 482913",
]
CLEAN = [
    "INFO api.x: looked up 35202-*******-1",
    "INFO api.x: sms to +92300****567",
    "INFO api.x: your code is ******",
    "INFO api.x: 12 rows in 0.123456 s",  # six digits that are not an issued code
    "INFO httpx: POST https://api.telegram.org/bot<token>/sendMessage",
]


def scanned(tmp_path: Path, lines: list[str], codes: set[str]) -> list[str]:
    path = tmp_path / "session.log"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return scan(SessionLog(path=path, codes=codes))


@pytest.mark.parametrize("line", LEAKS)
def test_the_scan_flags_personal_data_and_issued_codes(tmp_path, line):
    findings = scanned(tmp_path, [line], {"482913"})
    assert findings, line
    assert "3520212345671" not in " ".join(findings)  # the report itself is masked
    assert "+923001234567" not in " ".join(findings)


def test_the_scan_lets_masked_lines_through(tmp_path):
    assert scanned(tmp_path, CLEAN, {"482913", "000111"}) == []


def test_an_exception_quoting_input_is_masked_for_any_handler():
    """The record factory masks the traceback too, so a handler with a plain formatter (a
    deployment's own logging configuration, Python's last-resort handler) shows no CNIC."""
    install_masking()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("tests.security.masking")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise ValueError("no person 3520212345671 with mobile +923001234567")
        except ValueError:
            logger.exception("look-up failed for %s", "03001234567")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "ValueError" in text and "35202-*******-1" in text and "+92300****567" in text
    assert "3520212345671" not in text and "+923001234567" not in text
    assert "03001234567" not in text
