"""Complaints over SMS and WhatsApp, and over REST: filing, replays, tracking, notifications."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func, select

from api.grievances import service as grievance_service
from api.grievances.notify import owner_notifier
from api.grievances.schemas import MAX_DESCRIPTION, Status
from api.registry.models import Grievance, OutboundMessage
from tests.api.test_sms_payments import HELPER_PHONE, Chat, delivered_code
from tests.api.test_twilio_webhook import URL, reply_text, sms
from tests.conftest import ELIGIBLE_PHONE, ELIGIBLE_WIFE, NOT_ELIGIBLE_PHONE
from tests.grievances.conftest import resolve_telling_the_owner, the_update

TICKET = re.compile(r"G-[0-9A-Z]{6}")


async def file_as_wife(chat: Chat, text: str = "agent ne 2000 rupay kaat liye") -> str:
    await chat.send("LANG EN")
    menu = await chat.send("COMPLAINT")
    assert "Reply with a number" in menu or "Several CNICs" in menu
    assert "What is the complaint about?" in await chat.send("2")
    assert "Please describe the problem" in await chat.send("2")
    confirm = await chat.send(text)
    assert "Reply 1 to file it" in confirm or "*1.* File the complaint" in confirm
    filed = await chat.send("1")
    assert "is filed" in filed
    return TICKET.search(filed).group(0)


async def test_complaint_from_a_shared_phone_end_to_end(client, registry, db):
    ticket = await file_as_wife(Chat(client, ELIGIBLE_PHONE))
    async with db.sessions() as session:
        grievance = await session.scalar(select(Grievance).where(Grievance.ticket_id == ticket))
    assert grievance.cnic == ELIGIBLE_WIFE
    assert grievance.category == "deduction_by_agent"
    assert grievance.description == "agent ne 2000 rupay kaat liye"
    assert grievance.channel == "sms" and grievance.district == "Lahore"
    assert grievance.language == "en"


async def test_complaint_with_text_skips_the_description(client, registry):
    chat = Chat(client, NOT_ELIGIBLE_PHONE)
    await chat.send("LANG EN")
    assert "What is the complaint about?" in await chat.send("COMPLAINT paise nahi mile")
    confirm = await chat.send("1")
    assert '"paise nahi mile"' in confirm
    assert "is filed" in await chat.send("1")


async def test_a_long_whatsapp_complaint_is_filed_whole(client, registry, db):
    """A WhatsApp message carries 1,600 characters: a complaint of 900 is filed as written (the
    longest any channel files, MAX_DESCRIPTION), not cut at 500 without a word."""
    words = "Campsite par agent ne paise kaat liye aur kaha ke agli dafa poore milenge. "
    long = (words * 12).strip()
    assert 500 < len(long) <= MAX_DESCRIPTION
    chat = Chat(client, NOT_ELIGIBLE_PHONE, channel="whatsapp")
    await chat.send("LANG EN")
    await chat.send("COMPLAINT")
    await chat.send("1")
    await chat.send(long)
    ticket = TICKET.search(await chat.send("1")).group(0)
    async with db.sessions() as session:
        grievance = await session.scalar(select(Grievance).where(Grievance.ticket_id == ticket))
    assert grievance.description == long


async def test_description_starting_with_a_keyword_is_a_description(client, registry):
    chat = Chat(client, NOT_ELIGIBLE_PHONE)
    await chat.send("LANG EN")
    await chat.send("COMPLAINT")
    await chat.send("1")
    confirm = await chat.send("paise nahi mile teen mahine se")
    assert "paise nahi mile" in confirm


async def test_cancelled_complaint_files_nothing(client, registry, db):
    chat = Chat(client, NOT_ELIGIBLE_PHONE)
    await chat.send("LANG EN")
    await chat.send("COMPLAINT no money")
    await chat.send("1")
    assert "No complaint was filed" in await chat.send("2")
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Grievance)) == 0


async def test_helper_files_for_someone_with_the_code(client, app, settings, registry, db):
    helper = Chat(client, HELPER_PHONE)
    await helper.send("LANG EN")
    assert "we need the CNIC" in await helper.send("COMPLAINT biometric fail hua")
    assert "we sent a 6-digit code" in await helper.send(ELIGIBLE_WIFE)
    code = await delivered_code(app, settings, ELIGIBLE_PHONE)
    assert "What is the complaint about?" in await helper.send(code)
    assert "biometric fail hua" in await helper.send("3")
    # SPEC §3: a helper filing for two people tells the tickets apart by the CNIC each names.
    assert "for CNIC 35202-*******-2 is filed" in await helper.send("1")


async def test_replayed_confirmation_files_one_grievance(client, registry, db):
    chat = Chat(client, NOT_ELIGIBLE_PHONE)
    await chat.send("LANG EN")
    await chat.send("COMPLAINT no money for two months")
    await chat.send("1")
    form = sms("1", "SMconfirm-replay", sender=NOT_ELIGIBLE_PHONE)
    first = reply_text(await client.post(URL, data=form))
    second = reply_text(await client.post(URL, data=form))
    assert first == second and "is filed" in first
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Grievance)) == 1


async def test_track_by_the_owner_and_not_by_others(client, app, settings, registry):
    ticket = await file_as_wife(Chat(client, ELIGIBLE_PHONE))
    owner = Chat(client, ELIGIBLE_PHONE)
    status = await owner.send(f"TRACK {ticket.lower()}")
    assert f"Complaint {ticket} for CNIC 35202-***4567-2: received." in status
    stranger = Chat(client, HELPER_PHONE)
    await stranger.send("LANG EN")
    asked = await stranger.send(f"TRACK {ticket}")
    assert "we sent a 6-digit code" in asked and "received" not in asked
    assert "No complaint" in await stranger.send("TRACK G-AAAAAA")


def unmasked(text: str, cnic: str) -> bool:
    """True when `text` shows the CNIC `cnic` in full, with or without its dashes."""
    return cnic in text.replace("-", "")


@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
async def test_the_track_answer_names_the_cnic(client, app, settings, registry, channel):
    """SPEC §3: a helper tracking several people's complaints tells the answers apart by the
    CNIC each names, masked; the family's shared phone names her as its "which CNIC?" menu
    does (the husband's usual mask reads the same)."""
    ticket = await file_as_wife(Chat(client, ELIGIBLE_PHONE, channel=channel))
    shared = await Chat(client, ELIGIBLE_PHONE, channel=channel).send(f"TRACK {ticket}")
    if channel == "sms":  # within its segments: no category, no filing day
        assert shared.startswith(f"Complaint {ticket} for CNIC 35202-***4567-2: received. Answer")
    else:  # a chat pays no segments: what the complaint is about and when it was filed too
        assert shared.startswith(
            f"Complaint {ticket} for CNIC 35202-***4567-2 (money deducted by agent): "
            "received. Filed "
        )
    helper = Chat(client, HELPER_PHONE, channel=channel)
    await helper.send("LANG EN")
    assert "we sent a 6-digit code" in await helper.send(f"TRACK {ticket}")
    code = await delivered_code(app, settings, ELIGIBLE_PHONE)
    tracked = await helper.send(code)
    assert tracked.startswith(f"Complaint {ticket} for CNIC 35202-*******-2")
    assert not unmasked(shared, ELIGIBLE_WIFE) and not unmasked(tracked, ELIGIBLE_WIFE)


async def test_track_lists_the_verified_persons_complaints(client, registry):
    ticket = await file_as_wife(Chat(client, ELIGIBLE_PHONE))
    chat = Chat(client, ELIGIBLE_PHONE)
    listing = await chat.send("TRACK")
    # The shared phone is verified for the wife by the choice made while filing.
    assert ticket in listing


@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
async def test_the_complaint_filed_and_the_list_name_the_cnic(client, registry, channel):
    """SPEC §3: every answer about a CNIC names it masked; on a phone shared by a family, as
    its "which CNIC?" menu does (the last four digits of the serial tell them apart)."""
    own = Chat(client, NOT_ELIGIBLE_PHONE, channel=channel)
    await own.send("LANG EN")
    await own.send("COMPLAINT paise nahi mile")
    await own.send("1")
    assert "for CNIC 42101-*******-3 is filed" in await own.send("1")
    assert "CNIC 42101-*******-3 has 1 complaint:" in await own.send("TRACK")
    shared = Chat(client, ELIGIBLE_PHONE, channel=channel)
    await shared.send("LANG EN")
    await shared.send("COMPLAINT paise nahi mile")
    await shared.send("2")  # the wife
    await shared.send("1")
    assert "for CNIC 35202-***4567-2 is filed" in await shared.send("1")
    assert "CNIC 35202-***4567-2 has 1 complaint:" in await shared.send("TRACK")


async def test_status_change_reaches_the_owner_on_her_channel(client, app, registry, db):
    ticket = await file_as_wife(Chat(client, ELIGIBLE_PHONE, channel="whatsapp"))
    runtime = app.state.runtime
    async with db.transaction() as session:
        await grievance_service.change_status(
            session,
            ticket_id=ticket,
            to=Status.IN_PROGRESS,
            actor="agent1",
            note="Tehsil office is checking with the retailer",
            sla_days={"other": 15},
            notify=owner_notifier(runtime, session),
        )
    async with db.sessions() as session:
        messages = list(await session.scalars(select(OutboundMessage)))
    (message,) = [m for m in messages if m.kind == "grievance_update"]
    assert message.channel == "whatsapp" and message.to == ELIGIBLE_PHONE
    assert ticket in message.body and "being handled" in message.body
    assert "checking with the retailer" in message.body


async def test_update_outside_the_whatsapp_window_goes_by_sms(client, app, registry, db):
    ticket = await file_as_wife(Chat(client, ELIGIBLE_PHONE, channel="whatsapp"))
    from api.registry.models import Contact

    async with db.transaction() as session:
        contact = await session.scalar(select(Contact).where(Contact.channel == "whatsapp"))
        contact.last_inbound_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    await resolve_telling_the_owner(app.state.runtime, db, ticket, actor="agent1")
    message = await the_update(db)
    assert message.channel == "sms" and message.to == ELIGIBLE_PHONE


async def test_stop_and_start(client, registry, db):
    from api.registry.models import Contact

    chat = Chat(client, NOT_ELIGIBLE_PHONE)
    await chat.send("LANG EN")
    assert "no more updates" in await chat.send("STOP")
    async with db.sessions() as session:
        contact = await session.scalar(select(Contact).where(Contact.address == NOT_ELIGIBLE_PHONE))
    assert contact.opted_out is True
    assert "Updates are on again" in await chat.send("START")


async def test_rest_grievances(client, app, settings, registry):
    from tests.otp.test_rest_verification import login

    token = await login(client, app, settings, ELIGIBLE_WIFE, ELIGIBLE_PHONE)
    auth = {"Authorization": f"Bearer {token}"}
    created = await client.post(
        "/v1/me/grievances",
        headers=auth,
        json={
            "category": "payment_not_received",
            "description": "Q4 payment not received at campsite",
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert TICKET.fullmatch(body["ticket_id"])
    assert body["status"] == "open" and body["category"] == "payment_not_received"
    assert {"ticket_id", "category", "status", "created_at", "due_at", "events"} <= set(body)
    listing = await client.get("/v1/me/grievances", headers=auth)
    assert [g["ticket_id"] for g in listing.json()["grievances"]] == [body["ticket_id"]]
    one = await client.get(f"/v1/me/grievances/{body['ticket_id'].lower()}", headers=auth)
    assert one.status_code == 200 and one.json()["ticket_id"] == body["ticket_id"]
    missing = await client.get("/v1/me/grievances/G-AAAAAA", headers=auth)
    assert missing.status_code == 404
    bad = await client.post(
        "/v1/me/grievances", headers=auth, json={"category": "nonsense", "description": "x"}
    )
    assert bad.status_code == 422
    unauthenticated = await client.get("/v1/me/grievances")
    assert unauthenticated.status_code == 401


async def test_rest_refuses_a_description_of_zero_width_characters(client, app, settings, registry):
    from tests.otp.test_rest_verification import login

    token = await login(client, app, settings, ELIGIBLE_WIFE, ELIGIBLE_PHONE)
    auth = {"Authorization": f"Bearer {token}"}
    for invisible in ("\u200b", "\ufeff\u200b\u2060"):
        refused = await client.post(
            "/v1/me/grievances", headers=auth, json={"category": "other", "description": invisible}
        )
        assert refused.status_code == 422, refused.text
    listing = await client.get("/v1/me/grievances", headers=auth)
    assert listing.json()["grievances"] == []


@pytest.mark.parametrize(
    "extra",
    [
        # A partner that thinks it files for the person it names: it would be filed, silently,
        # for the token's owner instead.
        {"cnic": "4210198765433"},
        {"channel": "sms", "language": "ur"},
    ],
    ids=["cnic", "channel"],
)
async def test_rest_refuses_a_grievance_with_fields_it_does_not_take(
    client, app, settings, registry, extra
):
    from tests.otp.test_rest_verification import login

    token = await login(client, app, settings, ELIGIBLE_WIFE, ELIGIBLE_PHONE)
    auth = {"Authorization": f"Bearer {token}"}
    refused = await client.post(
        "/v1/me/grievances",
        headers=auth,
        json={"category": "other", "description": "Card not returned", **extra},
    )
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert {tuple(e["loc"]) for e in refused.json()["errors"]} == {("body", name) for name in extra}
    listing = await client.get("/v1/me/grievances", headers=auth)
    assert listing.json()["grievances"] == []


async def test_someone_elses_ticket_is_not_found_over_rest(client, app, settings, registry):
    from tests.otp.test_rest_verification import login

    ticket = await file_as_wife(Chat(client, ELIGIBLE_PHONE))
    token = await login(client, app, settings, "4210198765433", NOT_ELIGIBLE_PHONE)
    other = await client.get(
        f"/v1/me/grievances/{ticket}", headers={"Authorization": f"Bearer {token}"}
    )
    assert other.status_code == 404
