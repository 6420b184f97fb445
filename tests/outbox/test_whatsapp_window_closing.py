"""A WhatsApp update queued inside the 24-hour window may leave after it has closed (a retry's
backoff, a worker that was down, a backlog): with an approved template it must still go."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select

from api.outbox.service import deliver_due
from api.registry.models import Contact, OutboundMessage
from tests.api.test_sms_grievances import file_as_wife
from tests.api.test_sms_payments import Chat
from tests.conftest import ELIGIBLE_PHONE, app_client, running_app
from tests.grievances.conftest import resolve_telling_the_owner, the_update
from tests.outbox.conftest import RecordingSender

TEMPLATE = "HX" + "1" * 32


async def test_an_update_queued_in_the_window_goes_as_template_once_it_closes(
    settings, redis, registry, db
):
    with_template = settings.model_copy(update={"twilio_whatsapp_update_template": TEMPLATE})
    async with running_app(with_template) as app, app_client(app) as client:
        ticket = await file_as_wife(Chat(client, ELIGIBLE_PHONE, channel="whatsapp"))
        now = dt.datetime.now(dt.UTC)
        async with db.transaction() as session:
            contact = await session.scalar(select(Contact).where(Contact.channel == "whatsapp"))
            # Her last message was 23½ hours ago: the window is open when the update is queued.
            contact.last_inbound_at = now - dt.timedelta(hours=23, minutes=30)
        await resolve_telling_the_owner(app.state.runtime, db, ticket)
        queued = await the_update(db)
        assert queued.channel == "whatsapp"
        sender = RecordingSender("whatsapp")
        # The worker reaches it an hour later: the window has closed.
        report = await deliver_due(
            app.state.runtime.db,
            {"sms": sender, "whatsapp": sender, "telegram": sender},
            worker_id="w1",
            now=now + dt.timedelta(hours=1),
        )
    async with db.sessions() as session:
        stored = await session.get(OutboundMessage, queued.id)
    assert (report.sent, report.failed) == (1, 0), stored.error
    [sent] = sender.sent
    assert sent.use_template and sent.template == TEMPLATE
    assert json.loads(stored.template_variables)["1"].startswith(ticket)


async def test_an_update_inside_the_window_is_still_sent_free_form(settings, redis, registry, db):
    with_template = settings.model_copy(update={"twilio_whatsapp_update_template": TEMPLATE})
    async with running_app(with_template) as app, app_client(app) as client:
        ticket = await file_as_wife(Chat(client, ELIGIBLE_PHONE, channel="whatsapp"))
        await resolve_telling_the_owner(app.state.runtime, db, ticket)
        sender = RecordingSender("whatsapp")
        await deliver_due(
            app.state.runtime.db,
            {"sms": sender, "whatsapp": sender, "telegram": sender},
            worker_id="w1",
        )
    [sent] = sender.sent
    assert not sent.use_template and ticket in sent.body
