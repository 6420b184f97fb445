"""The code SMS "carries the code and nothing personal" (SPEC §3): whoever reads the registered
phone's inbox, or sees the SMS on its way, learns a code and how long it lasts, not whose CNIC,
number or name it is for.

The text is rendered in every language; the one queued for a code asked over REST is checked as
it went into the outbox.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from api.identity import normalise_text
from api.registry.models import OutboundMessage
from bot.formatting import LANGUAGES
from tests.conftest import ELIGIBLE_PHONE, ELIGIBLE_WIFE

CODE = "493021"


def numbers_in(text: str) -> list[str]:
    """Every run of digits, in whatever digits it is written (Urdu, Arabic-Indic)."""
    return re.findall(r"[0-9]+", normalise_text(text))


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_code_sms_names_the_code_and_its_minutes_only(renderer, language):
    body = renderer.render_text(
        "otp/code", {"code": CODE, "minutes": 5}, language=language, channel="sms"
    )
    assert sorted(numbers_in(body)) == sorted([CODE, "5"]), body
    assert "*" not in body  # no masked CNIC or number either


async def test_the_code_queued_for_a_rest_request_is_the_code_alone(client, db, registry):
    asked = await client.post("/v1/otp", json={"cnic": ELIGIBLE_WIFE})
    assert asked.status_code == 202
    async with db.sessions() as session:
        sent = (await session.scalars(select(OutboundMessage))).all()
    assert [(m.kind, m.to) for m in sent] == [("otp", ELIGIBLE_PHONE)]
    (code,) = [n for n in numbers_in(sent[0].body) if len(n) == 6]
    assert sorted(numbers_in(sent[0].body)) == sorted([code, "5"]), sent[0].body
    for private in ("Nasreen", "Bibi", "35202", "*", "Lahore"):
        assert private not in sent[0].body
