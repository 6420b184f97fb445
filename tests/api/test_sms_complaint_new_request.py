"""Asked to describe the complaint, the person sends a new request instead: a language (often
because they cannot read the prompt), `PAY <CNIC>` or `TRACK <ticket>`. It is that request, as
at the complaint's other questions, not the complaint's description: filed, `LANG EN` would be
a complaint an agent cannot act on, confirmed in the language the person just tried to leave."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from api.registry.models import Grievance
from tests.api.test_sms_payments import Chat
from tests.conftest import NOT_ELIGIBLE_PHONE

DESCRIBE = "مهرباني ڪري ٿورن لفظن ۾ مسئلو ٻڌايو"  # Sindhi: "please describe the problem"


@pytest.mark.parametrize(
    ("typed", "answer"),
    [
        pytest.param("LANG EN", "Language set to English.", id="lang-en"),
        pytest.param("lang english", "Language set to English.", id="lang-name"),
        pytest.param("LANG RU", "Zaban Roman Urdu kar di gayi hai.", id="lang-roman-urdu"),
        # Her own CNIC (this phone's): her payments, which she has none of yet.
        pytest.param("PAY 4210198765433", "42101-*******-3", id="pay-cnic"),
        # No such complaint: "شڪايت G-7K3M9Q نه ملي".
        pytest.param("TRACK G-7K3M9Q", "نه ملي", id="track-ticket"),
    ],
)
async def test_a_new_request_at_the_description_is_that_request(
    client, registry, db, typed, answer
):
    chat = Chat(client, NOT_ELIGIBLE_PHONE)
    await chat.send("LANG SD")
    await chat.send("COMPLAINT")
    assert DESCRIBE in await chat.send("1")
    reply = await chat.send(typed)
    assert "منسوخ" not in reply, reply  # not the confirmation: "… 2 to cancel"
    assert answer in reply, reply
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Grievance)) == 0


async def test_words_starting_with_a_keyword_are_still_the_description(client, registry):
    chat = Chat(client, NOT_ELIGIBLE_PHONE)
    await chat.send("LANG EN")
    await chat.send("COMPLAINT")
    await chat.send("1")
    confirm = await chat.send("LANG ki wajah se paise nahi mile")
    assert '"LANG ki wajah se paise nahi mile"' in confirm, confirm
