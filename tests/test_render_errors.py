"""A reply that fails to render in one language (a translator's typo in a `%(name)s`, a Jinja
error in one language's output) is counted and logged under its language and message, so an
operator reads "Sindhi replies are failing" from `/metrics` and the log, not only a route's 500s."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

import bot.render
from tests.api.test_twilio_webhook import URL, sms
from tests.conftest import NOT_FOUND

PHONE = "+923331234568"  # registered to nobody


class _Typo:
    """A catalog whose entries with a CNIC in them name it wrongly, as a translator may."""

    def __init__(self, catalog: Any) -> None:
        self.catalog = catalog

    def gettext(self, message: str) -> str:
        return str(self.catalog.gettext(message)).replace("%(cnic)s", "%(cnic_)s")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.catalog, name)


@pytest.fixture
def sindhi_typo(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sindhi's catalog with the typo; the real catalogs stay as they are."""
    translations = bot.render.translations

    def broken(language: str) -> Any:
        catalog = translations(language)
        return _Typo(catalog) if language == "sd" else catalog

    monkeypatch.setattr(bot.render, "translations", broken)


def _failures(language: str, message: str) -> float:
    labels = {"language": language, "message": message, "answered_in": "none"}
    return REGISTRY.get_sample_value("rabta_render_errors_total", labels) or 0.0


async def test_a_reply_broken_in_one_language_is_counted_and_logged_under_it(
    app, registry, sindhi_typo, caplog
) -> None:
    caplog.set_level(logging.INFO)
    before = _failures("sd", "eligibility/not_found")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://127.0.0.1:8000",
    ) as http:
        chosen = await http.post(URL, data=sms("LANG SD", "SMrender0001", sender=PHONE))
        assert chosen.status_code == 200  # a reply without a CNIC in it is not broken
        failed = await http.post(URL, data=sms(NOT_FOUND, "SMrender0002", sender=PHONE))
    assert failed.status_code == 500
    assert _failures("sd", "eligibility/not_found") - before == 1
    lines = [r for r in caplog.records if "failed to render" in r.getMessage()]
    assert [r.getMessage() for r in lines] == [
        "reply eligibility/not_found failed to render in language sd on POST " + URL
    ]
    assert lines[0].exc_text and "KeyError: 'cnic_'" in lines[0].exc_text
    assert NOT_FOUND not in lines[0].exc_text
