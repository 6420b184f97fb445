"""Answers that quote what was typed quote no CNIC or phone number.

`TRACK` wants a ticket (`G-7K3M9Q`), and "no complaint … was found" names the ticket asked for,
so a mistyped one can be told apart. People type their CNIC (or a relative's, or a phone number)
after TRACK too, thinking a complaint is followed by it: the answer must not carry it back (SPEC
§3: every answer names a CNIC masked), nor keep it in the inbound log's stored reply (90 days)
and the reply cache.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from api.identity import normalise_text
from api.registry.models import InboundMessage
from tests.api.test_sms_payments import Chat
from tests.conftest import ELIGIBLE_PHONE, ELIGIBLE_WIFE

STRANGER = "+923211234599"


def digit_runs(text: str) -> list[str]:
    return re.findall(r"[0-9]{6,}", re.sub(r"[\s\-+]", "", normalise_text(text)))


@pytest.mark.parametrize(
    "typed",
    [
        "35202-1234567-2",
        ELIGIBLE_WIFE,
        "35202 1234567 2",
        ELIGIBLE_PHONE,
        "03001234567",
        "G-" + ELIGIBLE_WIFE,
    ],
)
@pytest.mark.parametrize("language", ["EN", "UR", "RU", "SD", "PS", "PA"])
async def test_track_with_a_cnic_or_a_phone_does_not_quote_it(
    client, db, registry, typed, language
):
    chat = Chat(client, STRANGER)
    await chat.send(f"LANG {language}")
    answer = await chat.send(f"TRACK {typed}")
    assert "SMS" in answer  # the "check the number in the SMS" answer
    assert ("No complaint" in answer) == (language == "EN"), answer  # in the chosen language
    assert digit_runs(answer) == [], answer
    async with db.sessions() as session:
        stored = (await session.scalars(select(InboundMessage.reply))).all()
    assert [r for r in stored if r and digit_runs(r)] == []


async def test_a_ticket_that_is_not_there_is_still_named(client, registry):
    chat = Chat(client, STRANGER)
    await chat.send("LANG EN")
    assert "No complaint G-AAAAAA was found" in await chat.send("TRACK G-AAAAAA")
    assert "No complaint G7K3M9Q was found" in await chat.send("track g7k3m9q")
