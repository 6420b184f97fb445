"""A caller who once texted STOP asks an agent to file a complaint: the console promises her the
ticket number by SMS, so the SMS goes. STOP ends updates, not answers to her own requests."""

from __future__ import annotations

from sqlalchemy import select

from api.outbox.service import deliver_due
from api.registry.models import Grievance, OutboundMessage
from tests.agent.conftest import post_form
from tests.agent.test_callers import verified
from tests.api.test_sms_payments import Chat
from tests.conftest import ELIGIBLE_PHONE
from tests.grievances.conftest import resolve_telling_the_owner
from tests.outbox.conftest import RecordingSender


async def filed_for_a_caller_who_sent_stop(new_client, registry):
    """The caller texts STOP, then Amina files a complaint for her: (Amina, the form's answer)."""
    texting = await new_client()
    assert "no more updates" in await Chat(texting, ELIGIBLE_PHONE).send("STOP")
    amina = await new_client("amina")
    lookup = await verified(amina, registry)
    response = await post_form(
        amina,
        lookup,
        f"{lookup}/grievances",
        {"category": "other", "description": "Campsite was closed", "language": "en"},
    )
    return amina, response


async def test_the_ticket_sms_reaches_a_caller_who_sent_stop(new_client, staff, registry, app):
    amina, response = await filed_for_a_caller_who_sent_stop(new_client, registry)
    assert response.status_code == 303
    page = (await amina.get(response.headers["location"])).text
    assert "The caller gets the ticket number by SMS." in page
    sender = RecordingSender()
    await deliver_due(
        app.state.runtime.db,
        {"sms": sender, "whatsapp": sender, "telegram": sender},
        worker_id="w1",
    )
    async with registry.sessions() as session:
        grievance = await session.scalar(select(Grievance))
        ticket_sms = await session.scalar(
            select(OutboundMessage).where(OutboundMessage.grievance_id == grievance.id)
        )
    assert ticket_sms.status == "sent"
    assert [(s.to, grievance.ticket_id in s.body) for s in sender.sent if s.kind != "otp"] == [
        (ELIGIBLE_PHONE, True)
    ]


async def test_later_updates_to_that_caller_stay_suppressed(new_client, staff, registry, app):
    _, response = await filed_for_a_caller_who_sent_stop(new_client, registry)
    ticket = response.headers["location"].rsplit("/", 1)[1]
    await resolve_telling_the_owner(app.state.runtime, registry, ticket, actor="sadia")
    sender = RecordingSender()
    report = await deliver_due(
        app.state.runtime.db,
        {"sms": sender, "whatsapp": sender, "telegram": sender},
        worker_id="w1",
    )
    assert report.suppressed == 1
    assert [s.kind for s in sender.sent if s.kind != "otp"] == ["grievance_filed"]
