"""The escalation pass `rabta worker` runs: overdue grievances escalate once, owners hear of it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from api.grievances import service
from api.grievances.escalation import escalate_once
from api.grievances.schemas import Category, Status
from api.identity import Cnic
from api.registry.models import Grievance, OutboundMessage
from tests.conftest import ELIGIBLE_PHONE, ELIGIBLE_WIFE


async def test_overdue_grievances_escalate_once_and_the_owner_is_told(app, registry, db):
    runtime = app.state.runtime
    filed_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    async with db.transaction() as session:
        grievance = await service.file_grievance(
            session,
            cnic=Cnic(ELIGIBLE_WIFE),
            category=Category.DEDUCTION_BY_AGENT,
            description="agent kept 2000",
            channel="api",
            contact_id=None,
            language="ur",
            sla_days={"deduction_by_agent": 3},
            now=filed_at,
        )
        ticket = grievance.ticket_id
    assert await escalate_once(runtime) == 1
    assert await escalate_once(runtime) == 0
    async with db.sessions() as session:
        stored = await session.scalar(select(Grievance).where(Grievance.ticket_id == ticket))
        messages = list(await session.scalars(select(OutboundMessage)))
    assert stored.status == Status.ESCALATED
    (message,) = messages
    # Filed over the API: the update goes by SMS to the registered mobile, in her language.
    assert message.channel == "sms" and message.to == ELIGIBLE_PHONE
    assert ticket in message.body and message.language == "ur"
