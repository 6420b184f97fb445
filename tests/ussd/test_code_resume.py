"""A helper relaying the code from the owner's phone loses the USSD session (it times out) and
dials again: asking again within the code's five minutes asks for the same code (no second code,
no "dial again in N seconds"), and the first code then verifies. Another phone still meets the
cooldown; a used code is not resumed."""

from __future__ import annotations

from sqlalchemy import update

from api.registry.models import Contact
from bot.dialogue.ussd import UssdStore
from tests.conftest import ELIGIBLE_PHONE, ELIGIBLE_WIFE, codes_sent
from tests.ussd.conftest import Dial, delivered_code
from tests.ussd.test_sessions import HELPER_PHONE, english

OTHER_PHONE = "+923331112222"
SENT = "CON We sent a 6-digit code by SMS to +92300****567"


async def time_out(app, phone: Dial) -> None:
    """What three idle minutes do to the session: its state is gone, the next input ends it."""
    await app.state.runtime.redis.delete(UssdStore.key(phone.session_id))
    assert await phone.send("1") == "END This session has ended. Please dial again."


async def test_dialling_again_resumes_the_code_for_payments(dial, app, settings, registry, db):
    helper = await english(dial(HELPER_PHONE))
    await helper.send("2")
    assert (await helper.send(ELIGIBLE_WIFE)).startswith(SENT)
    code = await delivered_code(app, settings, ELIGIBLE_PHONE)
    await time_out(app, helper)
    await helper.dial()
    await helper.send("2")
    again = await helper.send(ELIGIBLE_WIFE)
    assert again.startswith(SENT) and "35202-*******-2" in again, again
    assert "dial again" not in again
    assert await codes_sent(db) == 1
    schedule = await helper.send(code)
    assert schedule.startswith("END 35202-*******-2 Kafaalat 2026-Q4: Rs 13,500, ready")


async def test_dialling_again_resumes_the_code_for_a_complaint(dial, app, settings, registry, db):
    helper = await english(dial(HELPER_PHONE))
    await helper.send("3")
    assert (await helper.send(ELIGIBLE_WIFE)).startswith(SENT)
    code = await delivered_code(app, settings, ELIGIBLE_PHONE)
    await time_out(app, helper)
    await helper.dial()
    await helper.send("3")
    assert (await helper.send(ELIGIBLE_WIFE)).startswith(SENT)
    assert (await helper.send(code)).startswith("CON What is the complaint about?")
    assert await codes_sent(db) == 1


async def test_another_phone_dialling_meets_the_cooldown(dial, app, settings, registry, db):
    helper = await english(dial(HELPER_PHONE))
    await helper.send("2")
    await helper.send(ELIGIBLE_WIFE)
    code = await delivered_code(app, settings, ELIGIBLE_PHONE)
    other = await english(dial(OTHER_PHONE))
    await other.send("2")
    refused = await other.send(ELIGIBLE_WIFE)
    assert refused.startswith(
        "END A code for CNIC 35202-*******-2 was sent a moment ago. Please dial again in"
    ), refused
    assert await codes_sent(db) == 1
    assert (await helper.send(code)).startswith("END 35202-*******-2 Kafaalat 2026-Q4")


async def test_a_used_code_is_not_resumed(dial, app, settings, registry, db):
    helper = await english(dial(HELPER_PHONE))
    await helper.send("2")
    await helper.send(ELIGIBLE_WIFE)
    code = await delivered_code(app, settings, ELIGIBLE_PHONE)
    assert (await helper.send(code)).startswith("END 35202-*******-2 Kafaalat")
    # Once the verification has lapsed, asking again is as today: the used code is not
    # resumed, so within the minute the cooldown, then a new code.
    async with app.state.runtime.db.transaction() as session:
        await session.execute(update(Contact).values(verified_cnic=None, verified_until=None))
    await helper.dial()
    await helper.send("2")
    assert (await helper.send(ELIGIBLE_WIFE)).startswith(
        "END A code for CNIC 35202-*******-2 was sent a moment ago"
    )
    redis = app.state.runtime.redis
    for key in await redis.keys("rabta:otp:cooldown:*"):
        await redis.delete(key)  # the minute passes
    await helper.dial()
    await helper.send("2")
    assert (await helper.send(ELIGIBLE_WIFE)).startswith(SENT)
    assert await codes_sent(db) == 2
    fresh = await delivered_code(app, settings, ELIGIBLE_PHONE)
    if fresh != code:  # the used code opens nothing now
        assert (await helper.send(code)).startswith("CON That code is not right.")
    assert (await helper.send(fresh)).startswith("END 35202-*******-2 Kafaalat")
