"""Grievance updates as the owner meets them: in the language she chose last, and never after
she said STOP, whichever channel carries the update."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from api.grievances import service as grievance_service
from api.grievances.notify import owner_notifier
from api.outbox.service import deliver_due
from api.registry.models import Contact, Grievance, OutboundMessage
from tests.api.test_sms_grievances import TICKET, file_as_wife
from tests.api.test_sms_payments import HELPER_PHONE, Chat, delivered_code
from tests.conftest import ELIGIBLE_PHONE, ELIGIBLE_WIFE, app_client, running_app
from tests.grievances.conftest import resolve_telling_the_owner, the_update
from tests.outbox.conftest import RecordingSender


async def resolve(app, db, ticket: str) -> OutboundMessage:
    """Resolve the grievance as a supervisor would; the one update it enqueued."""
    await resolve_telling_the_owner(app.state.runtime, db, ticket)
    return await the_update(db)


async def test_update_is_in_the_language_chosen_after_filing(client, app, registry, db):
    chat = Chat(client, ELIGIBLE_PHONE)
    ticket = await file_as_wife(chat)  # filed in English
    assert "Roman Urdu" in await chat.send("LANG RU")
    message = await resolve(app, db, ticket)
    assert message.language == "ur_Latn"
    assert ticket in message.body and "shikayat" in message.body.lower()


async def test_update_of_a_rest_complaint_is_in_the_language_she_chose_by_sms(
    client, app, settings, registry, db
):
    from tests.otp.test_rest_verification import login

    assert "English" in await Chat(client, ELIGIBLE_PHONE).send("LANG EN")
    token = await login(client, app, settings, ELIGIBLE_WIFE, ELIGIBLE_PHONE)
    created = await client.post(
        "/v1/me/grievances",
        headers={"Authorization": f"Bearer {token}"},
        json={"category": "other", "description": "Q4 payment not received"},
    )
    assert created.status_code == 201, created.text
    async with db.sessions() as session:
        filed = await session.scalar(select(Grievance))
    assert filed.language is None and filed.contact_id is None
    message = await resolve(app, db, created.json()["ticket_id"])
    assert (message.channel, message.to) == ("sms", ELIGIBLE_PHONE)
    assert message.language == "en"
    # Her registered mobile is her husband's too: named as its "which CNIC?" menu names her.
    assert message.body.startswith(
        f"Complaint {created.json()['ticket_id']} for CNIC 35202-***4567-2 is now: resolved."
    )


async def test_stop_on_whatsapp_also_holds_back_the_sms_that_stands_in_for_it(
    client, app, registry, db
):
    chat = Chat(client, ELIGIBLE_PHONE, channel="whatsapp")
    ticket = await file_as_wife(chat)
    assert "no more updates" in await chat.send("STOP")
    async with db.transaction() as session:
        contact = await session.scalar(select(Contact).where(Contact.channel == "whatsapp"))
        # Two days later the WhatsApp window is shut: the update would go by SMS.
        contact.last_inbound_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    message = await resolve(app, db, ticket)
    assert message.channel == "sms" and message.to == ELIGIBLE_PHONE
    sender = RecordingSender()
    report = await deliver_due(
        app.state.runtime.db,
        {"sms": sender, "whatsapp": sender, "telegram": sender},
        worker_id="w1",
    )
    assert sender.sent == [] and report.suppressed == 1
    async with db.sessions() as session:
        stored = await session.get(OutboundMessage, message.id)
    assert stored.status == "suppressed"


async def test_console_says_a_note_is_not_sent_after_stop_on_whatsapp(client, app, registry, db):
    """The console tells the agent whether her note reaches the caller: after STOP on WhatsApp
    the SMS standing in for it is suppressed, so it must say so rather than 'sent by SMS'."""
    from api.agent.repository import note_delivery

    chat = Chat(client, ELIGIBLE_PHONE, channel="whatsapp")
    ticket = await file_as_wife(chat)
    async with db.transaction() as session:
        contact = await session.scalar(select(Contact).where(Contact.channel == "whatsapp"))
        contact.last_inbound_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    runtime = app.state.runtime
    notes = []
    for text in ("Tehsil office is checking", "Retailer has been called"):
        async with db.transaction() as session:
            event = await grievance_service.add_note(
                session,
                ticket_id=ticket,
                actor="agent1",
                note=text,
                internal=False,
                notify=owner_notifier(runtime, session),
            )
            notes.append(await note_delivery(session, event_id=event.id))
        if len(notes) == 1:
            assert "no more updates" in await chat.send("STOP")
            async with db.transaction() as session:
                contact = await session.scalar(select(Contact).where(Contact.channel == "whatsapp"))
                contact.last_inbound_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    before, after = notes
    assert (before.queued, before.channel, before.opted_out) == (True, "sms", False)
    assert (after.queued, after.channel, after.opted_out) == (True, "sms", True)


async def test_stop_by_sms_holds_back_updates_on_whatsapp_of_that_phone(client, app, registry, db):
    """The STOP reply says "no more updates", not "no more SMS": a complaint filed on WhatsApp
    from the same phone gets none either, until START on either channel."""
    whatsapp = Chat(client, ELIGIBLE_PHONE, channel="whatsapp")
    ticket = await file_as_wife(whatsapp)
    sms = Chat(client, ELIGIBLE_PHONE)
    assert "no more updates" in await sms.send("STOP")
    async with db.sessions() as session:
        opted = dict((await session.execute(select(Contact.channel, Contact.opted_out))).all())
    assert opted == {"sms": True, "whatsapp": True}
    message = await resolve(app, db, ticket)
    assert message.channel == "whatsapp"
    sender = RecordingSender()
    channels = {"sms": sender, "whatsapp": sender, "telegram": sender}
    report = await deliver_due(app.state.runtime.db, channels, worker_id="w1")
    assert sender.sent == [] and report.suppressed == 1
    assert "Updates are on again" in await whatsapp.send("START")
    async with db.sessions() as session:
        opted = dict((await session.execute(select(Contact.channel, Contact.opted_out))).all())
    assert opted == {"sms": False, "whatsapp": False}


async def test_update_of_a_complaint_an_agent_filed_is_in_the_language_she_was_served_in(
    app, registry, db, settings
):
    """A complaint an agent files for a caller has no contact to read a language from: the
    update goes by SMS to her registered mobile in the language the agent filed it in."""
    from tests.grievances.conftest import file_one

    async with db.transaction() as session:
        filed = await file_one(session, settings, channel="agent", language="ps", filed_by="agent1")
    message = await resolve(app, db, filed.ticket_id)
    assert (message.channel, message.to) == ("sms", ELIGIBLE_PHONE)
    assert message.language == "ps"
    assert filed.ticket_id in message.body
    assert "is now" not in message.body  # rendered in Pashto, not the default
    assert "35202-***4567-2" in message.body and ELIGIBLE_WIFE not in message.body
    assert any("\u0600" <= ch <= "\u06ff" for ch in message.body)


async def updates_by_phone(db) -> dict[str, OutboundMessage]:
    """The grievance updates in the outbox, by the phone or chat each goes to."""
    async with db.sessions() as session:
        messages = await session.scalars(
            select(OutboundMessage).where(OutboundMessage.kind == "grievance_update")
        )
        return {message.to: message for message in messages}


@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
async def test_an_update_names_whose_complaint_it_is(client, app, settings, registry, db, channel):
    """SPEC §3: a helper's phone gets updates for everyone she filed for, and a family's shared
    phone for each of them; each update names its CNIC, masked as an answer on that phone would:
    the shared phone as its "which CNIC?" menu does, the helper's with the usual mask."""
    family = await file_as_wife(Chat(client, ELIGIBLE_PHONE, channel=channel))
    helper = Chat(client, HELPER_PHONE, channel=channel)
    await helper.send("LANG EN")
    await helper.send("COMPLAINT biometric fail hua")
    assert "we sent a 6-digit code" in await helper.send(ELIGIBLE_WIFE)
    await helper.send(await delivered_code(app, settings, ELIGIBLE_PHONE))
    await helper.send("3")
    helped = TICKET.search(await helper.send("1")).group(0)
    for ticket in (family, helped):
        await resolve_telling_the_owner(app.state.runtime, db, ticket)
    updates = await updates_by_phone(db)
    assert updates[ELIGIBLE_PHONE].channel == updates[HELPER_PHONE].channel == channel
    assert updates[ELIGIBLE_PHONE].body == (
        f"Complaint {family} for CNIC 35202-***4567-2 is now: resolved. STOP: no more updates."
    )
    assert updates[HELPER_PHONE].body == (
        f"Complaint {helped} for CNIC 35202-*******-2 is now: resolved. STOP: no more updates."
    )
    for update in updates.values():
        assert ELIGIBLE_WIFE not in update.body.replace("-", "")


async def test_an_update_by_whatsapp_template_names_the_cnic(settings, redis, registry, db):
    """Outside WhatsApp's 24 hours the update goes as the approved template `{{1}}: {{2}}`: its
    first variable names the complaint and, masked as her phone's answers name her, whose it is
    (SPEC §3), as the update's own text does."""
    sid = "HX" + "0" * 32
    with_template = settings.model_copy(update={"twilio_whatsapp_update_template": sid})
    async with running_app(with_template) as app, app_client(app) as client:
        chat = Chat(client, ELIGIBLE_PHONE, channel="whatsapp")
        ticket = await file_as_wife(chat)
        async with db.transaction() as session:
            contact = await session.scalar(select(Contact).where(Contact.channel == "whatsapp"))
            contact.last_inbound_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
        message = await resolve(app, db, ticket)
    assert (message.channel, message.template) == ("whatsapp", sid)
    variables = json.loads(message.template_variables)
    # Her registered mobile is her husband's too: named as its "which CNIC?" menu names her.
    assert variables == {"1": f"{ticket} (35202-***4567-2)", "2": "resolved"}
    assert f"{ticket} for CNIC 35202-***4567-2" in message.body
