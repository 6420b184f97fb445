"""Text PostgreSQL cannot store (a NUL, a lone UTF-16 surrogate) in a Telegram update.

JSON carries both (`\\u0000`, `\\ud800`) and Python reads them into the update's text; the
conversation echoes some of what was typed (an unknown ticket's number) and stores what a
complaint says. Stored as they came, the update failed (a 503) every time Telegram delivered
it again, and the person got no answer at all.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from api.registry.models import Grievance, InboundMessage
from api.webhooks.telegram import SECRET_HEADER
from tests.conftest import NOT_ELIGIBLE, NOT_ELIGIBLE_PHONE
from tests.telegram.conftest import SECRET, URL, TelegramChat, text_of

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


async def post_escaped(chat: TelegramChat, update: dict[str, Any]) -> str:
    """Post `update` as Telegram writes JSON (`\\u` escapes, which can spell a lone surrogate);
    it must be answered 200, and what the bot sent for it is returned."""
    before = len(chat.fake.sent)
    response = await chat.client.post(
        URL,
        content=json.dumps(update, ensure_ascii=True).encode(),
        headers={SECRET_HEADER: SECRET, "content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    return text_of(chat.fake.sent[before:])


@pytest.mark.parametrize("odd", ["\x00", "\ud800", "\udfff"], ids=["nul", "high", "low"])
async def test_an_unknown_ticket_with_unstorable_characters_is_answered(
    tg_client, fake_api, registry, db, odd
):
    chat = TelegramChat(tg_client, fake_api)
    await chat.send("LANG EN")
    update = chat.user.text(f"TRACK G-7K{odd}3M")
    answer = await post_escaped(chat, update)
    # A NUL is dropped (`G-7K3M` is named); a lone surrogate becomes U+FFFD, not GSM-7, and the
    # answer names no number then (grievance._as_typed).
    assert answer in (
        "No complaint G-7K3M was found. Please check the number in the SMS you got when filing.",
        "No complaint has that number. Please check the number in the SMS you got when filing.",
    )
    assert await post_escaped(chat, update) == ""  # delivered again: a replay, nothing sent
    async with db.sessions() as session:
        recorded = await session.scalar(
            select(InboundMessage.reply).where(
                InboundMessage.external_id == str(update["update_id"])
            )
        )
    assert recorded is not None and odd not in recorded


@pytest.mark.parametrize("odd", ["\x00", "\ud83d"], ids=["nul", "half-an-emoji"])
async def test_a_complaint_with_unstorable_characters_is_filed(
    tg_client, fake_api, registry, db, odd
):
    chat = TelegramChat(tg_client, fake_api)
    await chat.send("LANG EN")
    await chat.share(NOT_ELIGIBLE_PHONE)
    await chat.send("COMPLAINT")
    await chat.press("1")
    confirm = await post_escaped(chat, chat.user.text(f"paise nahi mile {odd} teen mahine se"))
    assert confirm.startswith("Complaint: payment not received")
    assert "Complaint G-" in await post_escaped(chat, chat.user.press("1"))
    async with db.sessions() as session:
        (grievance,) = await session.scalars(select(Grievance))
    assert grievance.cnic == NOT_ELIGIBLE
    assert grievance.description.startswith("paise nahi mile")
    assert grievance.description.endswith("teen mahine se")
    assert odd not in grievance.description


async def test_a_button_with_a_nul_is_answered(tg_client, fake_api, registry):
    chat = TelegramChat(tg_client, fake_api)
    await chat.send("LANG EN")
    answer = await post_escaped(chat, chat.user.press("TRACK G\x00X"))
    assert answer.startswith("No complaint G")
