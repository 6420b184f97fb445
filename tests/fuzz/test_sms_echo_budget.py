"""SMS answers that echo what the person typed stay within their segment budget (SPEC §2),
whatever they typed: emoji take two UTF-16 units each, and GSM-7's extension characters (`€`,
`[`, `|`) two septets."""

from __future__ import annotations

import pytest

from bot.i18n_report import sms_budget
from bot.segments import measure
from tests.api.test_twilio_webhook import URL, reply_text
from tests.conftest import NOT_ELIGIBLE_PHONE, sms_form

#: LANG code → the catalog's language.
LANGUAGES = {"EN": "en", "RU": "ur_Latn", "UR": "ur", "SD": "sd", "PS": "ps", "PA": "pa_Arab"}

DESCRIPTIONS = {
    "emoji": "paise nahi mile " + "😡" * 40,
    "flags": "abc " + "🇵🇰" * 30,
    "family": "abc " + "👨\u200d👩\u200d👧\u200d👦" * 10,
    # GSM-7 all the same, but each of these costs two septets (an escape and the character).
    "extension": "abc " + "€" * 50,
}


async def say(client, body: str, sid: str) -> str:
    return reply_text(await client.post(URL, data=sms_form(body, sid, NOT_ELIGIBLE_PHONE)))


@pytest.mark.parametrize("description", DESCRIPTIONS.values(), ids=DESCRIPTIONS.keys())
@pytest.mark.parametrize("code", LANGUAGES)
async def test_a_complaint_confirmation_echoing_emoji_keeps_its_budget(
    client, registry, code, description
):
    language = LANGUAGES[code]
    await say(client, f"LANG {code}", "SMecho1")
    await say(client, "COMPLAINT", "SMecho2")
    await say(client, "1", "SMecho3")
    confirm = await say(client, description, "SMecho4")
    assert "1" in confirm or "۱" in confirm or "١" in confirm  # the confirmation, not a prompt
    cost = measure(confirm)
    assert cost.segments <= sms_budget("grievance/confirm", language), (cost, confirm)


#: What people type after TRACK that is no complaint number, in letters GSM-7 does not have.
NOT_TICKETS = {
    "urdu": "میری شکایت",
    "emoji": "😀😀😀",
    "backticks": "`G-7K3M9Q`",
}


@pytest.mark.parametrize("typed", NOT_TICKETS.values(), ids=NOT_TICKETS.keys())
@pytest.mark.parametrize("code", LANGUAGES)
async def test_an_unknown_ticket_echoed_keeps_the_budget(client, registry, code, typed):
    language = LANGUAGES[code]
    await say(client, f"LANG {code}", "SMtrack1")
    answer = await say(client, f"TRACK {typed}", "SMtrack2")
    cost = measure(answer)
    assert cost.segments <= sms_budget("grievance/not_found", language), (cost, answer)
