"""A statement PostgreSQL cancels under an SMS's answer: a statement timeout, or an operator's
`pg_cancel_backend` on a query stuck behind a lock. The same message may succeed a moment later,
as after a restart; Twilio does not send a message again after a 5xx, so it must be held and
answered later, not lost to a 500."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select, text

from api.registry.models import Grievance, HeldMessage
from tests.api.test_sms_payments import Chat
from tests.api.test_twilio_webhook import URL as SMS_URL
from tests.api.test_twilio_webhook import sms
from tests.conftest import NOT_ELIGIBLE_PHONE

BLOCKED = text(
    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
    " AND query ILIKE '%grievances%' AND datname = current_database()"
)


async def test_a_complaint_whose_statement_is_cancelled_is_held_not_lost(client, registry, db):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("needs PostgreSQL (pg_cancel_backend)")
    chat = Chat(client, NOT_ELIGIBLE_PHONE)
    await chat.send("LANG EN")
    await chat.send("COMPLAINT no money for two months")
    assert "Reply 1 to file it" in await chat.send("1")
    async with db.engine.connect() as locker:
        await locker.execute(text("LOCK TABLE grievances IN ACCESS EXCLUSIVE MODE"))
        form = sms("1", "SMcancelled0001", sender=NOT_ELIGIBLE_PHONE)
        confirming = asyncio.create_task(client.post(SMS_URL, data=form))
        # Autocommit: pg_stat_activity is read afresh by each statement, not once a transaction.
        operating = db.engine.execution_options(isolation_level="AUTOCOMMIT")
        async with operating.connect() as operator:
            async with asyncio.timeout(5):
                while not (pids := (await operator.execute(BLOCKED)).scalars().all()):
                    await asyncio.sleep(0.05)
            for pid in pids:
                await operator.execute(text("SELECT pg_cancel_backend(:pid)"), {"pid": pid})
        response = await confirming
        await locker.rollback()
    assert response.status_code == 200, response.text
    async with db.sessions() as session:
        held = await session.scalar(
            select(func.count())
            .select_from(HeldMessage)
            .where(HeldMessage.external_id == "SMcancelled0001")
        )
        assert held == 1
        assert await session.scalar(select(func.count()).select_from(Grievance)) == 0
