"""A reply that fails to render in one language (a translator's typo in a `%(name)s`, a Jinja
error in one language's output) is answered in a language the person reads (Urdu, then English:
`bot.render.FALLBACKS`) rather than with a 500 Twilio would not send again, and is counted and
logged under its language and message, so an operator reads "Sindhi replies are failing" from
`/metrics` and the log, whatever the channel."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

import bot.render
from bot.i18n import detect_language
from tests.api.test_sms_payments import Chat
from tests.api.test_twilio_webhook import URL, sms
from tests.conftest import NOT_FOUND
from tests.ussd.conftest import Dial

ROMAN_URDU = "3"  # on the USSD language screen

PHONE = "+923331234568"  # registered to nobody


class _Typo:
    """A catalog whose entries with a CNIC in them name it wrongly, as a translator may."""

    def __init__(self, catalog: Any) -> None:
        self.catalog = catalog

    def gettext(self, message: str) -> str:
        return str(self.catalog.gettext(message)).replace("%(cnic)s", "%(cnic_)s")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.catalog, name)


def typo_in(monkeypatch: pytest.MonkeyPatch, broken_language: str) -> None:
    """That language's catalog with the typo; the real catalogs stay as they are."""
    translations = bot.render.translations

    def broken(language: str) -> Any:
        catalog = translations(language)
        return _Typo(catalog) if language == broken_language else catalog

    monkeypatch.setattr(bot.render, "translations", broken)


@pytest.fixture
def sindhi_typo(monkeypatch: pytest.MonkeyPatch) -> None:
    typo_in(monkeypatch, "sd")


def _failures(language: str, message: str, answered_in: str = "none") -> float:
    labels = {"language": language, "message": message, "answered_in": answered_in}
    return REGISTRY.get_sample_value("rabta_render_errors_total", labels) or 0.0


def _render_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "failed to render" in r.getMessage()]


async def test_a_reply_broken_in_one_language_is_answered_in_urdu_counted_and_logged(
    client, registry, sindhi_typo, caplog
) -> None:
    caplog.set_level(logging.INFO)
    before = _failures("sd", "eligibility/not_found", "ur")
    chat = Chat(client, PHONE)
    assert detect_language(await chat.send("LANG SD")) == "sd"  # no CNIC in it: not broken
    answer = await chat.send(NOT_FOUND)
    assert detect_language(answer) == "ur"
    assert NOT_FOUND[:5] in answer  # the CNIC the person asked about, masked as always
    assert _failures("sd", "eligibility/not_found", "ur") - before == 1
    lines = _render_lines(caplog)
    assert [r.getMessage() for r in lines] == [
        "reply eligibility/not_found failed to render in language sd; answered in ur"
    ]
    assert lines[0].levelname == "ERROR"
    assert lines[0].exc_text and "KeyError: 'cnic_'" in lines[0].exc_text
    assert NOT_FOUND not in lines[0].exc_text
    # The conversation stays in Sindhi: the next reply is tried in Sindhi again.
    assert detect_language(await chat.send("HELP")) == "sd"


async def test_a_reply_broken_in_every_language_is_a_500_counted_under_its_language(
    app, registry, sindhi_typo, caplog, monkeypatch
) -> None:
    monkeypatch.setattr(bot.render, "FALLBACKS", {})
    caplog.set_level(logging.INFO)
    before = _failures("sd", "eligibility/not_found")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://127.0.0.1:8000",
    ) as http:
        chosen = await http.post(URL, data=sms("LANG SD", "SMrender0001", sender=PHONE))
        assert chosen.status_code == 200
        failed = await http.post(URL, data=sms(NOT_FOUND, "SMrender0002", sender=PHONE))
    assert failed.status_code == 500
    assert _failures("sd", "eligibility/not_found") - before == 1
    lines = _render_lines(caplog)
    assert [r.getMessage() for r in lines] == [
        "reply eligibility/not_found failed to render in language sd; not answered",
        "reply eligibility/not_found failed to render in language sd on POST " + URL,
    ]
    # The traceback once, where it failed; the route's line says where it surfaced.
    assert lines[0].exc_text and "KeyError: 'cnic_'" in lines[0].exc_text
    assert not lines[1].exc_text
    assert NOT_FOUND not in lines[0].exc_text


async def test_a_ussd_screen_broken_in_its_language_is_shown_in_english_and_counted(
    client, registry, monkeypatch
) -> None:
    """USSD answers a failure with an error screen of its own, which counted nothing. Its
    screens are in English or Roman Urdu (bot.dialogue.ussd): Roman Urdu broken, English."""
    typo_in(monkeypatch, "ur_Latn")
    before = _failures("ur_Latn", "eligibility/not_found", "en")
    phone = Dial(client, PHONE)
    await phone.dial()
    await phone.send(ROMAN_URDU)
    assert (await phone.send("1")).startswith("CON ")
    screen = await phone.send(NOT_FOUND)
    assert screen.startswith("END CNIC " + NOT_FOUND[:5]) and "is not in the" in screen
    assert _failures("ur_Latn", "eligibility/not_found", "en") - before == 1
