"""A conversation whose save to Redis failed after its message was answered.

The answer commits to PostgreSQL first and the conversation is saved to Redis after it; when
that save fails (Redis paused, restarting, timing out: api/surge.py `save` logs it and the reply
still goes), Redis keeps the step the message had moved on from. The tests put the state such
a save leaves back in Redis, as it was before the message, and send the next message.
"""

from __future__ import annotations

from sqlalchemy import func, select

from api.registry.models import Grievance
from tests.api.test_sms_payments import Chat
from tests.conftest import NOT_ELIGIBLE_PHONE


async def grievances(db) -> list[str]:
    async with db.sessions() as session:
        return list(await session.scalars(select(Grievance.ticket_id).order_by(Grievance.id)))


async def test_a_confirmation_whose_state_was_not_saved_files_no_second_complaint(
    app, client, registry, db
):
    runtime = app.state.runtime
    chat = Chat(client, NOT_ELIGIBLE_PHONE)
    await chat.send("LANG EN")
    await chat.send("COMPLAINT no money for two months")
    asked = await chat.send("1")
    assert "1" in asked and "2" in asked  # the confirmation
    key = runtime.conversations.key("sms", NOT_ELIGIBLE_PHONE)
    at_confirmation = await runtime.redis.get(key)
    assert at_confirmation is not None
    filed = await chat.send("1")
    [ticket] = await grievances(db)
    assert ticket in filed
    # The save after the filing failed: Redis still has the conversation at its confirmation.
    await runtime.redis.set(key, at_confirmation, ex=1800)
    again = await chat.send("1")
    assert await grievances(db) == [ticket]
    assert ticket in again  # the person is told the ticket she has, not a new one
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Grievance)) == 1


async def test_a_new_complaint_after_one_is_filed_gets_its_own_ticket(app, client, registry, db):
    chat = Chat(client, NOT_ELIGIBLE_PHONE)
    await chat.send("LANG EN")
    await chat.send("COMPLAINT no money for two months")
    await chat.send("1")
    await chat.send("1")
    await chat.send("COMPLAINT no money for two months")
    await chat.send("1")
    await chat.send("1")
    assert len(set(await grievances(db))) == 2
