"""The grievance queue in the console: views, notes, status changes, assignment, escalation."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from html import unescape as html_unescape

from sqlalchemy import select, update

from api.agent import i18n
from api.agent.routes.grievances import CALLER_NOTE_MAX
from api.grievances import repository, service
from api.grievances.schemas import Category
from api.identity import Cnic
from api.registry.models import Contact, Grievance, GrievanceEvent, OutboundMessage
from tests.agent.conftest import audit_entries, post_form
from tests.agent.test_callers import set_mobile
from tests.conftest import ELIGIBLE_PHONE, ELIGIBLE_WIFE, NOT_ELIGIBLE


async def file(db, settings, *, cnic: str = ELIGIBLE_WIFE, days_ago: float = 0, **extra) -> str:
    """A grievance filed by SMS `days_ago` days ago; its ticket id."""
    async with db.transaction() as session:
        grievance = await service.file_grievance(
            session,
            cnic=Cnic(cnic),
            category=extra.pop("category", Category.PAYMENT_NOT_RECEIVED),
            description=extra.pop("description", "Paisay nahi mile"),
            channel="sms",
            contact_id=None,
            language="ur_Latn",
            district=extra.pop("district", "Lahore"),
            sla_days=settings.grievance_sla_days,
            now=dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago),
        )
        return grievance.ticket_id


async def test_the_console_says_why_a_note_was_not_sent(new_client, staff, registry, settings):
    """Not every opt-out is a STOP: the carrier's (Twilio's 21610) and a blocked Telegram bot
    are told as what they are, so the agent does not tell the caller she sent STOP."""
    ticket = await file(registry, settings)
    amina = await new_client("amina")
    page = f"/agent/grievances/{ticket}"
    async with registry.transaction() as session:
        session.add(
            Contact(
                channel="sms",
                address=ELIGIBLE_PHONE,
                phone=ELIGIBLE_PHONE,
                opted_out=True,
                opted_out_by="carrier",
            )
        )
    await post_form(amina, page, f"{page}/notes", {"note": "Bring your CNIC"})
    shown = html_unescape((await amina.get(page)).text)
    assert "the caller told her mobile company to stop messages on SMS" in shown
    assert "(STOP)." not in shown
    async with registry.transaction() as session:
        chat = Contact(
            channel="telegram", address="5012345678", opted_out=True, opted_out_by="blocked"
        )
        session.add(chat)
        await session.flush()
        await session.execute(
            update(Grievance).where(Grievance.ticket_id == ticket).values(contact_id=chat.id)
        )
    await post_form(amina, page, f"{page}/notes", {"note": "Come on Monday"})
    shown = html_unescape((await amina.get(page)).text)
    assert "the caller has blocked Rabta on Telegram" in shown


async def events(db, ticket: str) -> list[GrievanceEvent]:
    async with db.sessions() as session:
        grievance = await session.scalar(select(Grievance).where(Grievance.ticket_id == ticket))
        result = await session.scalars(
            select(GrievanceEvent)
            .where(GrievanceEvent.grievance_id == grievance.id)
            .order_by(GrievanceEvent.id)
        )
        return list(result)


async def status_of(db, ticket: str) -> str:
    async with db.sessions() as session:
        return await session.scalar(select(Grievance.status).where(Grievance.ticket_id == ticket))


async def test_the_queue_views(new_client, staff, registry, settings):
    fresh = await file(registry, settings)
    late = await file(
        registry, settings, cnic=NOT_ELIGIBLE, days_ago=10, district="Karachi Central"
    )
    amina = await new_client("amina")
    page = (await amina.get("/agent/grievances")).text
    assert fresh in page and late in page
    assert page.index(late) < page.index(fresh)  # earliest due first
    breached = (await amina.get("/agent/grievances?view=breached")).text
    assert late in breached and fresh not in breached
    assert "Past SLA" in breached
    by_district = (await amina.get("/agent/grievances?district=Lahore")).text
    assert fresh in by_district and late not in by_district
    assert fresh not in (await amina.get("/agent/grievances?view=escalated")).text
    # An agent sees no supervisor tools.
    assert "Escalate overdue now" not in page


async def test_a_grievance_page_is_an_audited_view_with_the_cnic_masked(
    new_client, staff, registry, settings
):
    ticket = await file(registry, settings)
    amina = await new_client("amina")
    page = (await amina.get(f"/agent/grievances/{ticket}")).text
    assert "35202-*******-2" in page and ELIGIBLE_WIFE not in page
    assert "Paisay nahi mile" in page
    [entry] = await audit_entries(registry, action="view", record_type="grievance")
    assert (entry.actor, entry.record_id) == ("amina", ticket)
    # A ticket typed loosely is found and shown under its canonical id.
    loose = await amina.get(f"/agent/grievances/{ticket.lower().replace('-', '')}")
    assert loose.status_code == 303 and loose.headers["location"].endswith(ticket)
    assert (await amina.get("/agent/grievances/G-000000")).status_code == 404


async def test_notes_internal_and_to_the_caller(new_client, staff, registry, settings):
    ticket = await file(registry, settings)
    amina = await new_client("amina")
    page = f"/agent/grievances/{ticket}"
    await post_form(amina, page, f"{page}/notes", {"note": "Called the campsite", "internal": "1"})
    await post_form(amina, page, f"{page}/notes", {"note": "Please visit on Monday"})
    history = await events(registry, ticket)
    assert [(e.action, e.actor, e.note) for e in history[1:]] == [
        ("internal_note", "amina", "Called the campsite"),
        ("note", "amina", "Please visit on Monday"),
    ]
    async with registry.sessions() as session:
        bodies = list(
            await session.scalars(
                select(OutboundMessage.body).where(OutboundMessage.to == ELIGIBLE_PHONE)
            )
        )
    # Only the visible note reaches the caller.
    assert any("Monday" in body for body in bodies)
    assert not any("campsite" in body.lower() for body in bodies)
    assert len(await audit_entries(registry, action="add_note")) == 2


def note_form(html: str, box: str) -> dict[str, str]:
    """The hidden fields of the note form holding the textarea `box` ("note", "caller-note")."""
    forms = re.findall(r'<form method="post" action="[^"]+/notes".*?</form>', html, re.S)
    [form] = [f for f in forms if f'<textarea id="{box}"' in f]
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form))


async def test_a_note_form_sent_twice_adds_the_note_once(new_client, staff, registry, settings):
    """A double click without JavaScript, or a post sent again after a dropped connection: one
    note, one SMS to the caller, one audit entry. The same words written again on the page as
    it is now are another note."""
    ticket = await file(registry, settings)
    amina = await new_client("amina")
    page = f"/agent/grievances/{ticket}"
    for box, action in (("caller-note", "note"), ("note", "internal_note")):
        form = {**note_form((await amina.get(page)).text, box), "note": "Visit on Monday"}
        answers = [
            *await asyncio.gather(
                amina.post(f"{page}/notes", data=form), amina.post(f"{page}/notes", data=form)
            ),
            await amina.post(f"{page}/notes", data=form),
        ]
        assert {(a.status_code, a.headers["location"]) for a in answers} == {(303, page)}
        assert [e.action for e in await events(registry, ticket)].count(action) == 1
    async with registry.sessions() as session:
        sent = list(
            await session.scalars(select(OutboundMessage.body).where(OutboundMessage.kind != "otp"))
        )
    assert len([body for body in sent if "Monday" in body]) == 1
    assert len(await audit_entries(registry, action="add_note")) == 2
    shown = (await amina.get(page)).text
    again = {**note_form(shown, "caller-note"), "note": "Visit on Monday"}
    await amina.post(f"{page}/notes", data=again)
    assert [e.action for e in await events(registry, ticket)].count("note") == 2


async def test_an_agent_escalates_with_a_reason_kept_from_the_caller(
    new_client, staff, registry, settings
):
    ticket = await file(registry, settings)
    amina = await new_client("amina")
    page = f"/agent/grievances/{ticket}"
    shown = (await amina.get(page)).text
    assert "Escalate to a supervisor" in shown and "Change status" not in shown
    no_reason = await post_form(amina, page, f"{page}/status", {"to": "escalated", "note": ""})
    assert no_reason.status_code == 303
    assert await status_of(registry, ticket) == "open"
    await post_form(
        amina, page, f"{page}/status", {"to": "escalated", "note": "Retailer deducted Rs 500"}
    )
    assert await status_of(registry, ticket) == "escalated"
    history = await events(registry, ticket)
    assert [(e.action, e.note) for e in history[1:]] == [
        ("escalated", None),
        ("internal_note", "Retailer deducted Rs 500"),
    ]
    async with registry.sessions() as session:
        bodies = list(await session.scalars(select(OutboundMessage.body)))
    assert bodies and not any("Retailer" in body for body in bodies)
    # Anything else is for supervisors.
    refused = await post_form(amina, page, f"{page}/status", {"to": "resolved", "note": ""})
    assert refused.status_code == 403
    assert await status_of(registry, ticket) == "escalated"


async def test_a_supervisor_works_the_escalated_queue(new_client, staff, registry, settings):
    ticket = await file(registry, settings)
    amina = await new_client("amina")
    page = f"/agent/grievances/{ticket}"
    await post_form(amina, page, f"{page}/status", {"to": "escalated", "note": "Needs a decision"})
    sadia = await new_client("sadia")
    queue = (await sadia.get("/agent/grievances?view=escalated")).text
    assert ticket in queue
    shown = (await sadia.get(page)).text
    assert '<label for="to">New status</label>' in shown
    assert '<option value="in_progress">' in shown and '<option value="open">' not in shown
    await post_form(sadia, page, f"{page}/assign", {"agent_id": str(staff["bilal"])})
    await post_form(sadia, page, f"{page}/status", {"to": "in_progress", "note": ""})
    async with registry.sessions() as session:
        grievance = await session.scalar(select(Grievance).where(Grievance.ticket_id == ticket))
    assert (grievance.status, grievance.assigned_to) == ("in_progress", staff["bilal"])
    bilal = await new_client("bilal")
    assert ticket in (await bilal.get("/agent/grievances?view=mine")).text
    # A change the transitions table forbids is explained, not made.
    await post_form(sadia, page, f"{page}/status", {"to": "open", "note": ""})
    assert "cannot go from In progress to Open" in (await sadia.get(page)).text
    await post_form(sadia, page, f"{page}/status", {"to": "resolved", "note": "Paid on 2 Dec"})
    assert await status_of(registry, ticket) == "resolved"
    changes = [e.reason for e in await audit_entries(registry, action="change_status")]
    assert changes == [
        "open -> escalated: Needs a decision",
        "escalated -> in_progress",
        "in_progress -> resolved: Paid on 2 Dec",
    ]
    assert [e.reason for e in await audit_entries(registry, action="assign")] == [
        "assigned to bilal"
    ]


async def test_only_supervisors_assign(new_client, staff, registry, settings):
    ticket = await file(registry, settings)
    amina = await new_client("amina")
    page = f"/agent/grievances/{ticket}"
    response = await post_form(amina, page, f"{page}/assign", {"agent_id": str(staff["amina"])})
    assert response.status_code == 403


async def test_a_supervisor_escalates_everything_overdue(new_client, staff, registry, settings):
    late = await file(registry, settings, days_ago=10)
    fresh = await file(registry, settings, cnic=NOT_ELIGIBLE)
    sadia = await new_client("sadia")
    response = await post_form(sadia, "/agent/grievances", "/agent/grievances-escalate-overdue", {})
    assert response.status_code == 303
    assert await status_of(registry, late) == "escalated"
    assert await status_of(registry, fresh) == "open"
    assert "1 overdue grievances escalated." in (await sadia.get(response.headers["location"])).text
    amina = await new_client("amina")
    refused = await post_form(amina, "/agent/grievances", "/agent/grievances-escalate-overdue", {})
    assert refused.status_code == 403


async def test_a_note_for_the_caller_is_held_to_what_her_sms_carries(
    new_client, staff, registry, settings
):
    ticket = await file(registry, settings)
    amina = await new_client("amina")
    page = f"/agent/grievances/{ticket}"
    shown = (await amina.get(page)).text
    assert f'name="note" rows="2" maxlength="{CALLER_NOTE_MAX}"' in shown
    assert f"at most {CALLER_NOTE_MAX} characters" in shown
    # The longest note the console takes reaches the caller whole, not cut by the SMS template.
    whole = ("Please bring your CNIC to the Lahore campsite on Monday at ten " + "x" * 80)[
        :CALLER_NOTE_MAX
    ]
    await post_form(amina, page, f"{page}/notes", {"note": whole})
    longer = whole + " and your card."
    refused = await post_form(amina, page, f"{page}/notes", {"note": longer})
    assert refused.status_code == 303
    assert "this one has 95. Shorten it" in (await amina.get(page)).text
    # Staff's own notes keep their 1000 characters.
    await post_form(amina, page, f"{page}/notes", {"note": longer * 5, "internal": "1"})
    history = await events(registry, ticket)
    assert [(e.action, e.note) for e in history[1:]] == [
        ("note", whole),
        ("internal_note", longer * 5),
    ]
    async with registry.sessions() as session:
        [body] = await session.scalars(
            select(OutboundMessage.body).where(OutboundMessage.to == ELIGIBLE_PHONE)
        )
    assert whole in body
    # A supervisor's note with a status change goes to the caller too: the same limit.
    sadia = await new_client("sadia")
    await post_form(sadia, page, f"{page}/status", {"to": "in_progress", "note": longer})
    assert await status_of(registry, ticket) == "open"
    assert "this one has 95." in (await sadia.get(page)).text


async def test_urdu_pages_show_statuses_and_record_types_in_urdu(
    new_client, staff, registry, settings
):
    ticket = await file(registry, settings)
    sadia = await new_client("sadia")
    sadia.cookies.set(i18n.LANGUAGE_COOKIE, "ur", domain="127.0.0.1")
    page = f"/agent/grievances/{ticket}"
    await post_form(sadia, page, f"{page}/status", {"to": "open", "note": ""})
    # Each value in an Urdu sentence is isolated (FSI ... PDI): it keeps its own direction.
    assert (
        "شکایت \u2068کھلی\u2069 سے \u2068کھلی\u2069 پر نہیں جا سکتی۔"
        in (await sadia.get(page)).text
    )
    zara = await new_client("zara")
    zara.cookies.set(i18n.LANGUAGE_COOKIE, "ur", domain="127.0.0.1")
    audit_page = (await zara.get("/agent/audit")).text
    assert f"شکایت: {ticket}" in audit_page
    assert "grievance:" not in audit_page


async def test_the_console_says_whether_a_note_for_the_caller_was_sent(
    new_client, staff, registry, settings
):
    ticket = await file(registry, settings)
    amina = await new_client("amina")
    page = f"/agent/grievances/{ticket}"
    await post_form(amina, page, f"{page}/notes", {"note": "Please visit on Monday"})
    assert "Note added. It goes to the caller by SMS." in (await amina.get(page)).text
    # She sent STOP: the outbox keeps the message and the worker suppresses it.
    async with registry.transaction() as session:
        session.add(Contact(channel="sms", address=ELIGIBLE_PHONE, phone=ELIGIBLE_PHONE))
        await session.flush()
        await session.execute(update(Contact).values(opted_out=True))
    await post_form(amina, page, f"{page}/notes", {"note": "Bring your CNIC"})
    shown = (await amina.get(page)).text
    assert "Note added, but not sent: the caller has stopped messages on SMS (STOP)." in shown
    assert "It goes to the caller" not in shown
    # No contact on her grievance and no registered mobile: nothing can carry the note.
    await set_mobile(registry, ELIGIBLE_WIFE, None)
    await post_form(amina, page, f"{page}/notes", {"note": "Come to the office"})
    shown = (await amina.get(page)).text
    assert "Note added, but not sent: the caller has no registered mobile or chat" in shown
    assert "sent to the caller" not in shown and "It goes to the caller" not in shown
    async with registry.sessions() as session:
        bodies = list(await session.scalars(select(OutboundMessage.body)))
    assert not any("office" in body for body in bodies)
    reasons = [e.reason for e in await audit_entries(registry, action="add_note")]
    assert reasons == [
        "note queued to the caller by sms",
        "note for the caller, not sent: opted out of sms",
        "note for the caller, not sent: no contact or registered mobile",
    ]


def form_seen(html: str, action: str) -> dict[str, str]:
    """The hidden fields of the form posting to `action` on a page."""
    form = html[html.index(f'action="{action}"') :]
    form = form[: form.index("</form>")]
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form))


async def test_two_supervisors_on_one_grievance(new_client, staff, registry, settings):
    ticket = await file(registry, settings)
    page = f"/agent/grievances/{ticket}"
    sadia, zara = await new_client("sadia"), await new_client("zara")
    sadias = (await sadia.get(page)).text
    zaras = (await zara.get(page)).text
    status_form = form_seen(zaras, f"{page}/status")
    assert (
        await zara.post(f"{page}/status", data={**status_form, "to": "in_progress"})
    ).status_code == 303
    # Sadia's page still shows it open: her rejection would overwrite Zara's decision unseen.
    stale = form_seen(sadias, f"{page}/status")
    refused = await sadia.post(f"{page}/status", data={**stale, "to": "rejected", "note": "No"})
    assert refused.status_code == 303
    shown = (await sadia.get(page)).text
    assert "zara changed this grievance to In progress while you had it open" in shown
    assert await status_of(registry, ticket) == "in_progress"
    # Read again, her choice goes through.
    fresh = form_seen(shown, f"{page}/status")
    await sadia.post(f"{page}/status", data={**fresh, "to": "resolved", "note": "Paid"})
    assert await status_of(registry, ticket) == "resolved"
    # The same form sent twice (a double click) resolves once, and says so.
    again = await sadia.post(f"{page}/status", data={**fresh, "to": "resolved", "note": "Paid"})
    assert again.status_code == 303
    assert (
        "This grievance is already Resolved: the form was sent twice"
        in (await sadia.get(page)).text
    )
    history = [(e.action, e.actor, e.to_status) for e in await events(registry, ticket)]
    assert history[1:] == [
        ("status_changed", "zara", "in_progress"),
        ("status_changed", "sadia", "resolved"),
    ]
    async with registry.sessions() as session:
        updates = list(
            await session.scalars(
                select(OutboundMessage.body).where(OutboundMessage.kind == "grievance_update")
            )
        )
    assert len(updates) == 2  # one SMS per change made, none for the refused ones
    assert [e.reason for e in await audit_entries(registry, action="change_status")] == [
        "open -> in_progress",
        "in_progress -> resolved: Paid",
    ]


async def test_an_assignment_made_meanwhile_is_not_overwritten(
    new_client, staff, registry, settings
):
    ticket = await file(registry, settings)
    page = f"/agent/grievances/{ticket}"
    sadia, zara = await new_client("sadia"), await new_client("zara")
    sadias = (await sadia.get(page)).text
    zaras = (await zara.get(page)).text
    await zara.post(
        f"{page}/assign",
        data={**form_seen(zaras, f"{page}/assign"), "agent_id": str(staff["bilal"])},
    )
    stale = form_seen(sadias, f"{page}/assign")
    await sadia.post(f"{page}/assign", data={**stale, "agent_id": str(staff["amina"])})
    shown = (await sadia.get(page)).text
    assert "zara assigned this grievance to bilal while you had it open" in shown
    async with registry.sessions() as session:
        assigned = await session.scalar(
            select(Grievance.assigned_to).where(Grievance.ticket_id == ticket)
        )
    assert assigned == staff["bilal"]
    await sadia.post(
        f"{page}/assign",
        data={**form_seen(shown, f"{page}/assign"), "agent_id": str(staff["amina"])},
    )
    async with registry.sessions() as session:
        assigned = await session.scalar(
            select(Grievance.assigned_to).where(Grievance.ticket_id == ticket)
        )
    assert assigned == staff["amina"]


async def test_the_district_filter_takes_the_name_as_typed(new_client, staff, registry, settings):
    lahore = await file(registry, settings, district="Lahore")
    karachi = await file(registry, settings, cnic=NOT_ELIGIBLE, district="Karachi Central")
    sadia = await new_client("sadia")
    for typed in ("Lahore", "lahore", " LAHORE "):
        page = (await sadia.get("/agent/grievances", params={"district": typed})).text
        assert lahore in page and karachi not in page, typed
        assert 'value="' + typed.strip() + '"' in page  # the box keeps what was typed
    page = (await sadia.get("/agent/grievances", params={"district": "karachi central"})).text
    assert karachi in page and lahore not in page


def textarea(html: str, field_id: str) -> str:
    """What a page's textarea holds when it opens."""
    found = re.search(rf'<textarea id="{field_id}"[^>]*>([^<]*)</textarea>', html)
    assert found, f"no textarea {field_id}"
    return html_unescape(found.group(1))


async def test_a_refused_note_or_status_change_keeps_what_was_typed(
    new_client, staff, registry, settings
):
    """Nothing typed is lost: the form a refusal leads back to holds the words again."""
    ticket = await file(registry, settings)
    page = f"/agent/grievances/{ticket}"
    sadia, zara = await new_client("sadia"), await new_client("zara")
    sadias = (await sadia.get(page)).text
    zaras = (await zara.get(page)).text
    await zara.post(
        f"{page}/status", data={**form_seen(zaras, f"{page}/status"), "to": "in_progress"}
    )
    note = "Your payment is at the Ichhra campsite from Monday & bring your CNIC."
    stale = form_seen(sadias, f"{page}/status")
    await sadia.post(f"{page}/status", data={**stale, "to": "resolved", "note": note})
    shown = (await sadia.get(page)).text
    assert "while you had it open" in shown
    assert textarea(shown, "status-note") == note
    # Shown once: the page after it starts empty again.
    assert textarea((await sadia.get(page)).text, "status-note") == ""
    # A note for the caller too long for her SMS comes back to be shortened, not retyped.
    longer = note + " Call 8171 if it is closed."
    await post_form(sadia, page, f"{page}/notes", {"note": longer})
    shown = (await sadia.get(page)).text
    assert "Shorten it" in shown and textarea(shown, "caller-note") == longer
    assert textarea(shown, "note") == ""


async def test_tab_counts_stop_at_the_cap(new_client, staff, registry, settings, monkeypatch):
    """A tab counts up to COUNT_CAP grievances and shows "N+" past it (the Closed tab holds
    every grievance ever closed); below it, exact."""
    from api.agent import pages
    from api.agent.routes import grievances as queue_routes

    monkeypatch.setattr(pages, "COUNT_CAP", 2)
    monkeypatch.setattr(queue_routes, "COUNT_CAP", 2)
    tickets = [await file(registry, settings, days_ago=d) for d in (3, 2, 1)]
    async with registry.sessions() as session:
        assert (
            await repository.count_queue(session, repository.QueueFilter(statuses=("open",)), cap=2)
            == 3
        )
        assert (
            await repository.count_queue(session, repository.QueueFilter(statuses=("open",)), cap=5)
            == 3
        )
    amina = await new_client("amina")
    page = (await amina.get("/agent/grievances")).text
    assert '<span class="count">2+</span>' in page  # open: three
    assert '<span class="count">0</span>' in page  # escalated: none
    assert all(t in page for t in tickets) and 'rel="next"' not in page  # one page of three
