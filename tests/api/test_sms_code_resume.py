"""A helper who asks again for a CNIC whose code already went out (the conversation expired, or
they started over) is asked for that code again: no second code, no "wait a minute"; typing the
first code verifies. Another phone still meets the cooldown; a used or burned code is not
resumed."""

from __future__ import annotations

from sqlalchemy import update

from api.registry.models import Contact
from tests.api.test_sms_payments import (
    HELPER_PHONE,
    Chat,
    delivered_code,
    helper_awaiting_her_code,
)
from tests.conftest import ELIGIBLE_PHONE, ELIGIBLE_WIFE, codes_sent

OTHER_PHONE = "+923331112222"


async def forget_conversations(app) -> None:
    """What the conversation's expiry does: its state in Redis is gone."""
    redis = app.state.runtime.redis
    for key in await redis.keys("rabta:conv:*"):
        await redis.delete(key)


async def pass_the_cooldown(app) -> None:
    redis = app.state.runtime.redis
    for key in await redis.keys("rabta:otp:cooldown:*"):
        await redis.delete(key)


async def test_a_new_conversation_resumes_the_code(client, app, settings, registry, db):
    helper = Chat(client, HELPER_PHONE)
    await helper.send("LANG EN")
    assert "we sent a 6-digit code" in await helper.send(f"PAY {ELIGIBLE_WIFE}")
    code = await delivered_code(app, settings, ELIGIBLE_PHONE)
    await forget_conversations(app)
    again = await helper.send(f"PAY {ELIGIBLE_WIFE}")
    assert "we sent a 6-digit code" in again and "+92300****567" in again
    assert "35202-*******-2" in again and "Please wait" not in again
    assert await codes_sent(db) == 1
    assert "Kafaalat 2026-Q4: Rs 13,500" in await helper.send(code)


async def test_starting_over_then_asking_again_resumes_the_code(
    client, app, settings, registry, db
):
    helper, code = await helper_awaiting_her_code(client, app, settings)
    await helper.send("HELP")  # the conversation starts afresh
    # Two and a half minutes later: past the cooldown, still the same code, not a new one, and
    # the reply gives the time it has left.
    await pass_the_cooldown(app)
    redis = app.state.runtime.redis
    for key in await redis.keys("rabta:otp:req:*"):
        await redis.expire(key, 150)
    again = await helper.send(f"PAY {ELIGIBLE_WIFE}")
    assert "we sent a 6-digit code" in again and "within 2 minutes" in again
    assert await codes_sent(db) == 1
    assert "Rs 13,500" in await helper.send(code)


async def test_another_phone_gets_the_cooldown_not_the_helpers_code(
    client, app, settings, registry, db
):
    helper, code = await helper_awaiting_her_code(client, app, settings)
    other = Chat(client, OTHER_PHONE)
    await other.send("LANG EN")
    refused = await other.send(f"PAY {ELIGIBLE_WIFE}")
    assert "Please wait" in refused and "seconds" in refused
    # The helper's code opens nothing for the other phone: it has no request waiting.
    assert "Rs 13,500" not in await other.send(code)
    # The same phone on WhatsApp is another conversation, so it waits too.
    whatsapp = Chat(client, HELPER_PHONE, channel="whatsapp")
    await whatsapp.send("LANG EN")
    assert "Please wait" in await whatsapp.send(f"PAY {ELIGIBLE_WIFE}")
    assert await codes_sent(db) == 1
    assert "Rs 13,500" in await helper.send(code)


async def test_after_the_code_is_used_a_new_request_is_as_before(
    client, app, settings, registry, db
):
    helper, code = await helper_awaiting_her_code(client, app, settings)
    assert "Rs 13,500" in await helper.send(code)
    # Once the verification has lapsed, asking again is as today: the used code is not
    # resumed; within the minute the cooldown, then a new code.
    await forget_conversations(app)
    async with app.state.runtime.db.transaction() as session:
        await session.execute(update(Contact).values(verified_cnic=None, verified_until=None))
    assert "Please wait" in await helper.send(f"PAY {ELIGIBLE_WIFE}")
    await pass_the_cooldown(app)
    assert "we sent a 6-digit code" in await helper.send(f"PAY {ELIGIBLE_WIFE}")
    assert await codes_sent(db) == 2
    fresh = await delivered_code(app, settings, ELIGIBLE_PHONE)
    assert "Rs 13,500" in await helper.send(fresh)


async def test_after_the_code_is_burned_a_new_request_is_as_before(
    client, app, settings, registry, db
):
    helper, code = await helper_awaiting_her_code(client, app, settings)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(3):
        await helper.send(wrong)
    # Asking again resumes with the tries already spent: two left, not five.
    await forget_conversations(app)
    assert "we sent a 6-digit code" in await helper.send(f"PAY {ELIGIBLE_WIFE}")
    assert "You can try 1 more time" in await helper.send(wrong)
    assert "Too many wrong codes" in await helper.send(wrong)
    assert "Please wait" in await helper.send(f"PAY {ELIGIBLE_WIFE}")
    await pass_the_cooldown(app)
    assert "we sent a 6-digit code" in await helper.send(f"PAY {ELIGIBLE_WIFE}")
    assert await codes_sent(db) == 2


async def test_the_otp_keys_name_no_cnic_or_phone(client, app, registry):
    helper = Chat(client, HELPER_PHONE)
    await helper.send("LANG EN")
    await helper.send(f"PAY {ELIGIBLE_WIFE}")
    await helper.send(f"PAY {ELIGIBLE_WIFE}")
    keys = await app.state.runtime.redis.keys("rabta:otp:*")
    assert any(k.startswith("rabta:otp:resume:") for k in keys)
    for key in keys:
        for secret in (ELIGIBLE_WIFE, HELPER_PHONE[1:], HELPER_PHONE[-7:], ELIGIBLE_PHONE[-7:]):
            assert secret not in key, key
