"""Telegram: the language button (or `/lang`, or `LANG UR` typed) in the middle of a complaint
keeps it: the same question comes back in the new language, with its buttons in it, and the
complaint's draft waits for its answer (tests/api/test_sms_language_midflow.py for SMS)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from api.registry.models import Grievance
from tests.conftest import NOT_ELIGIBLE_PHONE
from tests.telegram.conftest import TelegramChat, buttons

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


def said(renderer, name: str, language: str, **context) -> str:
    return renderer.render_text(name, context, language=language, channel="telegram")


async def test_the_language_button_at_the_category_menu(
    tg_client, fake_api, registry, db, renderer
):
    chat = TelegramChat(tg_client, fake_api)
    await chat.send("LANG EN")
    await chat.share(NOT_ELIGIBLE_PHONE)
    assert "What is the complaint about?" in await chat.press("menu:complaint")
    await chat.press("menu:language")
    assert "اردو" in [label for label, _ in buttons(chat.last_markup())]
    reply = await chat.press("LANG UR")
    assert reply.startswith("زبان اردو کر دی گئی ہے۔"), reply
    assert said(renderer, "grievance/ask_category", "ur") in reply, reply
    labels = [label for label, _ in buttons(chat.last_markup())]
    assert labels[1] == said(
        renderer, "grievance/category_name", "ur", category="deduction_by_agent"
    )
    assert await chat.press("2") == said(renderer, "grievance/ask_description", "ur")
    reply = await chat.send("LANG EN")
    assert reply.startswith("Language set to English."), reply
    assert "Please describe the problem" in reply, reply
    await chat.send("The agent kept 2000 rupees")
    assert "is filed" in await chat.press("1")
    async with db.sessions() as session:
        (grievance,) = await session.scalars(select(Grievance))
    assert grievance.category == "deduction_by_agent"
    assert grievance.description == "The agent kept 2000 rupees"
