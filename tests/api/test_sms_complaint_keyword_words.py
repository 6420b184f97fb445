"""`SHIKAYAT <words>` sent where the complaint asks for its words (at its description, or at its
category menu, which keeps words it is sent): the words are the description, the keyword is not,
as the first message `SHIKAYAT <words>` is read. People repeat the keyword they started with,
and an agent reading "SHIKAYAT paise nahi mile" learns nothing from its first word."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from api.registry.models import Grievance
from tests.api.test_sms_payments import Chat
from tests.conftest import NOT_ELIGIBLE_PHONE

#: (the language chosen, what is typed, the description filed): a complaint keyword of each
#: language, as its help text and posters give it.
KEYWORDED = [
    pytest.param("EN", "SHIKAYAT paise nahi mile", "paise nahi mile", id="roman-urdu"),
    pytest.param("EN", "complaint: retailer took Rs 500", "retailer took Rs 500", id="english"),
    pytest.param("UR", "شکایت، پیسے نہیں ملے", "پیسے نہیں ملے", id="urdu"),
    pytest.param("SD", "دانهن پئسا نه مليا", "پئسا نه مليا", id="sindhi"),
    pytest.param("PS", "ګیله پیسې نه دي راغلې", "پیسې نه دي راغلې", id="pashto"),
]


async def filed_description(db) -> str:
    async with db.sessions() as session:
        return (await session.scalars(select(Grievance.description))).one()


@pytest.mark.parametrize(("code", "typed", "words"), KEYWORDED)
async def test_a_keyword_before_the_description_is_not_filed(
    client, registry, db, code, typed, words
):
    chat = Chat(client, NOT_ELIGIBLE_PHONE)
    await chat.send(f"LANG {code}")
    await chat.send("COMPLAINT")
    await chat.send("1")
    confirm = await chat.send(typed)
    assert words in confirm and typed not in confirm, confirm
    await chat.send("1")
    assert await filed_description(db) == words


@pytest.mark.parametrize(("code", "typed", "words"), KEYWORDED)
async def test_a_keyword_before_words_at_the_category_menu_is_not_kept(
    client, registry, db, code, typed, words
):
    chat = Chat(client, NOT_ELIGIBLE_PHONE)
    await chat.send(f"LANG {code}")
    await chat.send("COMPLAINT")
    await chat.send(typed)  # asked for the category again, the words kept
    confirm = await chat.send("1")
    assert words in confirm and typed not in confirm, confirm
    await chat.send("1")
    assert await filed_description(db) == words


async def test_a_keyword_and_no_words_of_a_complaint_asks_for_them(client, registry, db):
    """`SHIKAYAT darj karni hai` says only that they want to complain, as it does first."""
    chat = Chat(client, NOT_ELIGIBLE_PHONE)
    await chat.send("LANG EN")
    await chat.send("COMPLAINT")
    ask = await chat.send("1")
    assert await chat.send("SHIKAYAT darj karni hai") == ask
