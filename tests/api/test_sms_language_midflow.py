"""A language chosen in the middle of a question (`LANG UR`, or `LANG` / `زبان` and the menu's
number) keeps what was under way: the answer is the same question in the new language, and the
complaint's category and words, the chosen person and the code that went out wait for it. A
woman halfway through a complaint who switches to Urdu because she cannot read the English
prompt does not start again.

On SMS the "language set" line comes with the question only when both fit the question's segment
budget (SPEC §2); otherwise the question alone, in the new language, is the answer: it is what
she needs. WhatsApp bills no segments: both, always."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from api.registry.models import Grievance
from bot.i18n_report import sms_budget
from bot.segments import measure
from tests.api.test_sms_payments import HELPER_PHONE, Chat, delivered_code
from tests.conftest import ELIGIBLE_PHONE, ELIGIBLE_WIFE, NOT_ELIGIBLE_PHONE, codes_sent

CHANGED_UR = "زبان اردو کر دی گئی ہے۔"
CHANGED_EN = "Language set to English."


def said(renderer, name: str, language: str, channel: str = "sms", **context) -> str:
    """What the reply `name` says in `language` on `channel`."""
    return renderer.render_text(name, context, language=language, channel=channel)


async def filed(db) -> list[Grievance]:
    async with db.sessions() as session:
        return list(await session.scalars(select(Grievance)))


def within_budget(reply: str, name: str, language: str) -> bool:
    return measure(reply).segments <= sms_budget(name, language)


# -- each question of a complaint -----------------------------------------------------------


async def test_at_the_category_menu(client, registry, db, renderer):
    chat = Chat(client, NOT_ELIGIBLE_PHONE)
    await chat.send("LANG EN")
    await chat.send("COMPLAINT")
    reply = await chat.send("LANG UR")
    assert said(renderer, "grievance/ask_category", "ur") in reply, reply
    assert within_budget(reply, "grievance/ask_category", "ur"), reply
    # Still the complaint: "1" is its category, and the next question is in Urdu.
    assert await chat.send("1") == said(renderer, "grievance/ask_description", "ur")
    confirm = await chat.send("تین مہینے سے پیسے نہیں ملے")
    assert confirm == said(
        renderer,
        "grievance/confirm",
        "ur",
        category="payment_not_received",
        description="تین مہینے سے پیسے نہیں ملے",
    )
    assert (await filed(db)) == []
    await chat.send("1")
    (grievance,) = await filed(db)
    assert grievance.category == "payment_not_received"
    assert grievance.description == "تین مہینے سے پیسے نہیں ملے"
    assert grievance.language == "ur"


async def test_at_the_description(client, registry, db, renderer):
    chat = Chat(client, NOT_ELIGIBLE_PHONE)
    await chat.send("LANG EN")
    await chat.send("COMPLAINT")
    await chat.send("3")
    reply = await chat.send("LANG UR")
    # Both fit the prompt's two Urdu segments.
    assert reply.startswith(CHANGED_UR), reply
    assert reply.endswith(said(renderer, "grievance/ask_description", "ur")), reply
    assert within_budget(reply, "grievance/ask_description", "ur"), reply
    confirm = await chat.send("انگوٹھا نہیں لگ رہا")
    await chat.send("1")
    (grievance,) = await filed(db)
    assert grievance.category == "biometric_failure", confirm
    assert grievance.description == "انگوٹھا نہیں لگ رہا"


async def test_at_the_confirmation(client, registry, db, renderer):
    chat = Chat(client, NOT_ELIGIBLE_PHONE)
    await chat.send("LANG EN")
    await chat.send("COMPLAINT")
    await chat.send("2")
    assert "Reply 1 to file it" in await chat.send("The agent kept 2000 rupees")
    reply = await chat.send("LANG UR")
    expected = said(
        renderer,
        "grievance/confirm",
        "ur",
        category="deduction_by_agent",
        description="The agent kept 2000 rupees",
    )
    assert expected in reply, reply
    assert within_budget(reply, "grievance/confirm", "ur"), reply
    assert (await filed(db)) == []
    await chat.send("1")
    (grievance,) = await filed(db)
    assert grievance.category == "deduction_by_agent"
    assert grievance.description == "The agent kept 2000 rupees"


async def test_asked_for_the_cnic_then_the_code(client, app, settings, registry, db, renderer):
    helper = Chat(client, HELPER_PHONE)
    await helper.send("LANG EN")
    assert "we need the CNIC" in await helper.send("COMPLAINT the agent kept 2000 rupees")
    reply = await helper.send("LANG UR")
    assert said(renderer, "grievance/ask_cnic", "ur") in reply, reply
    sent = await helper.send(ELIGIBLE_WIFE)
    assert "+92300****567" in sent and "کوڈ" in sent, sent  # the code went, asked for in Urdu
    code = await delivered_code(app, settings, ELIGIBLE_PHONE)
    assert await helper.send(code) == said(renderer, "grievance/ask_category", "ur")
    confirm = await helper.send("2")
    assert "the agent kept 2000 rupees" in confirm, confirm
    await helper.send("1")
    (grievance,) = await filed(db)
    assert grievance.description == "the agent kept 2000 rupees"


# -- which CNIC? and the code -----------------------------------------------------------------


@pytest.mark.parametrize("request_", ["PAY", "COMPLAINT"])
async def test_at_which_cnic(client, registry, renderer, request_):
    chat = Chat(client, ELIGIBLE_PHONE)
    await chat.send("LANG EN")
    assert "Several CNICs" in await chat.send(request_)
    reply = await chat.send("LANG UR")
    menu = said(
        renderer, "verify/choose_person", "ur", cnics=["35202-***4567-1", "35202-***4567-2"]
    )
    assert menu in reply, reply
    after = await chat.send("2")
    if request_ == "PAY":
        assert "35202-***4567-2" in after and "13,500" in after, after
    else:
        assert after == said(renderer, "grievance/ask_category", "ur")


async def test_while_a_code_is_awaited(client, app, settings, registry, db, renderer):
    helper = Chat(client, HELPER_PHONE)
    await helper.send("LANG EN")
    assert "we sent a 6-digit code" in await helper.send(f"PAY {ELIGIBLE_WIFE}")
    code = await delivered_code(app, settings, ELIGIBLE_PHONE)
    reply = await helper.send("LANG UR")
    assert "35202-*******-2" in reply and "+92300****567" in reply, reply
    assert (
        said(
            renderer,
            "verify/code_sent",
            "ur",
            cnic="35202-*******-2",
            mobile="+92300****567",
            minutes=5,
        )
        in reply
    ), reply
    assert await codes_sent(db) == 1  # the same code, asked for again: no second one
    schedule = await helper.send(code)
    assert "13,500" in schedule and "35202-*******-2" in schedule, schedule


# -- the language menu in the middle --------------------------------------------------------


@pytest.mark.parametrize("keyword", ["LANG", "زبان"])
async def test_the_menu_then_a_number(client, registry, db, renderer, keyword):
    chat = Chat(client, NOT_ELIGIBLE_PHONE)
    await chat.send("LANG EN")
    await chat.send("COMPLAINT")
    await chat.send("1")
    assert "UR Urdu" in await chat.send(keyword)
    reply = await chat.send("UR")
    assert reply.endswith(said(renderer, "grievance/ask_description", "ur")), reply
    await chat.send("تین مہینے سے پیسے نہیں ملے")
    await chat.send("1")
    (grievance,) = await filed(db)
    assert grievance.category == "payment_not_received"


async def test_the_menu_then_the_answer_to_the_question(client, registry, db):
    """At the language menu she answers the question instead: it is that answer, in the
    language she had."""
    chat = Chat(client, NOT_ELIGIBLE_PHONE)
    await chat.send("LANG EN")
    await chat.send("COMPLAINT")
    await chat.send("1")
    await chat.send("LANG")
    confirm = await chat.send("No money for three months")
    assert 'Complaint: payment not received, "No money for three months"' in confirm, confirm


# -- what stays as it was -----------------------------------------------------------------


async def test_a_verified_conversation_stays_verified(client, app, settings, registry, db):
    helper = Chat(client, HELPER_PHONE)
    await helper.send("LANG EN")
    await helper.send(f"PAY {ELIGIBLE_WIFE}")
    await helper.send(await delivered_code(app, settings, ELIGIBLE_PHONE))
    assert "What is the complaint about?" in await helper.send("COMPLAINT")
    await helper.send("LANG UR")
    schedule = await helper.send(f"PAY {ELIGIBLE_WIFE}")
    assert "13,500" in schedule, schedule
    assert await codes_sent(db) == 1


async def test_idle_lang_is_the_confirmation_alone(client, registry):
    chat = Chat(client, NOT_ELIGIBLE_PHONE)
    assert await chat.send("LANG EN") == "Language set to English. Send HELP for the menu."


# -- WhatsApp: no segments to count, both always ----------------------------------------------


async def test_whatsapp_confirms_the_language_and_asks_again(client, registry, db, renderer):
    chat = Chat(client, NOT_ELIGIBLE_PHONE, channel="whatsapp")
    await chat.send("LANG EN")
    await chat.send("COMPLAINT")
    reply = await chat.send("LANG UR")
    assert reply.startswith(CHANGED_UR), reply
    assert said(renderer, "grievance/ask_category", "ur", channel="whatsapp") in reply, reply
    await chat.send("4")
    reply = await chat.send("LANG EN")
    assert reply.startswith(CHANGED_EN), reply
    assert "Please describe the problem" in reply, reply
    await chat.send("My name is not on the list")
    await chat.send("1")
    (grievance,) = await filed(db)
    assert grievance.category == "eligibility_dispute"
