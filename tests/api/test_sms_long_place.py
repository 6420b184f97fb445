"""A payment place as long as the registry takes (120 characters; the templates are budgeted for
60): by SMS the schedule shows as much of it as the budget holds, ending in `..`, and stays
within SPEC §2's segments in every language. WhatsApp and Telegram, which bill no segments,
show it whole; USSD cuts its screen (tests/ussd/test_long_screens.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update

from api.registry.models import Payment
from bot.i18n_report import PLACE_120, WORST_CASE_CONTEXT, sms_budget, tranche
from bot.segments import measure
from tests.api.test_sms_payments import Chat
from tests.conftest import ELIGIBLE_PHONE

#: LANG code → the catalog's language.
LANGUAGES = {"EN": "en", "RU": "ur_Latn", "UR": "ur", "SD": "sd", "PS": "ps", "PA": "pa_Arab"}


@pytest.fixture
async def long_place(registry):
    """Her next tranche withheld, with the longest reason, collected at a 120-character place
    from a retailer (whose name does not say so: the mode is added), over months written long."""
    async with registry.transaction() as session:
        await session.execute(
            update(Payment)
            .where(Payment.payment_id == "PAY-0002")
            .values(
                place=PLACE_120,
                mode="retailer",
                status="withheld",
                reason="network outage at collection point",
                window_start=dt.date(2026, 9, 28),
                window_end=dt.date(2027, 1, 31),
            )
        )
    return registry


async def schedule(client, code: str, channel: str = "sms") -> str:
    chat = Chat(client, ELIGIBLE_PHONE, channel=channel)
    await chat.send(f"LANG {code}")
    await chat.send("PAY")
    return await chat.send("2")  # the wife's


@pytest.mark.parametrize("code", LANGUAGES)
async def test_a_long_place_keeps_the_schedule_within_its_budget(client, long_place, code):
    text = await schedule(client, code)
    cost = measure(text)
    assert cost.segments <= sms_budget("payments/schedule", LANGUAGES[code]), (cost, text)
    # As much of the place as 60 units hold, ending in `..`, the mode after it.
    assert "Muzaffarga..\u2069 (" in text or "Muzaffarga.. (" in text, text


@pytest.mark.parametrize("code", ["EN", "UR"])
async def test_whatsapp_shows_the_place_whole(client, long_place, code):
    assert PLACE_120 in await schedule(client, code, channel="whatsapp")


def test_telegram_shows_the_place_whole(renderer):
    """Telegram reads the SMS template (it has no schedule of its own), and bills no segments."""
    context = {**WORST_CASE_CONTEXT, "next": tranche("2026-Q4", "ready")}
    assert context["next"].place == PLACE_120
    for language in LANGUAGES.values():
        text = renderer.render_text(
            "payments/schedule", context, language=language, channel="telegram"
        )
        assert PLACE_120 in text, (language, text)
