"""Brute-forcing a one-time code, over REST and over SMS, stays within the caps (SPEC §3): 5 wrong
tries burn a code, even in parallel; 60 s between codes; 5 codes per CNIC per hour. The most an
attacker can try per CNIC per hour is 5 × 5 = 25 guesses of a million."""

from __future__ import annotations

import asyncio

from api.otp.service import CODE_DIGITS
from tests.api.test_sms_payments import HELPER_PHONE, Chat
from tests.conftest import ELIGIBLE_PHONE, ELIGIBLE_WIFE
from tests.otp.test_rest_verification import code_for
from tests.security.figures import figure

MAX_TRIES = 5
CODES_PER_HOUR = 5


def wrong_codes(right: str, count: int) -> list[str]:
    return [f"{n:06d}" for n in range(count + 1) if f"{n:06d}" != right][:count]


async def pass_the_cooldown(app) -> None:
    """What a minute does: the resend cooldown of every CNIC lapses."""
    redis = app.state.runtime.redis
    for key in await redis.keys("rabta:otp:cooldown:*"):
        await redis.delete(key)


async def test_rest_five_wrong_codes_burn_it_and_the_right_one_no_longer_opens(
    client, app, settings, registry
):
    started = await client.post("/v1/otp", json={"cnic": ELIGIBLE_WIFE})
    request_id = started.json()["request_id"]
    right = await code_for(app, settings, ELIGIBLE_PHONE)
    answers = []
    for guess in wrong_codes(right, MAX_TRIES):
        answers.append(
            await client.post("/v1/otp/verify", json={"request_id": request_id, "code": guess})
        )
    assert [a.status_code for a in answers] == [401] * MAX_TRIES
    assert [a.json()["detail"] for a in answers[:2]] == [
        "Wrong code; 4 tries left.",
        "Wrong code; 3 tries left.",
    ]
    late = await client.post("/v1/otp/verify", json={"request_id": request_id, "code": right})
    assert late.status_code == 429 and "access_token" not in late.text


async def test_rest_parallel_guesses_are_counted_before_they_are_compared(
    client, app, settings, registry
):
    """50 guesses at once: at most 5 are compared, then the code is gone, right one included."""
    started = await client.post("/v1/otp", json={"cnic": ELIGIBLE_WIFE})
    request_id = started.json()["request_id"]
    right = await code_for(app, settings, ELIGIBLE_PHONE)
    guesses = wrong_codes(right, 50)
    answers = await asyncio.gather(
        *(
            client.post("/v1/otp/verify", json={"request_id": request_id, "code": g})
            for g in guesses
        )
    )
    compared = [a for a in answers if a.status_code == 401]
    assert len(compared) <= MAX_TRIES
    assert not any(a.status_code == 200 for a in answers)
    late = await client.post("/v1/otp/verify", json={"request_id": request_id, "code": right})
    assert late.status_code != 200
    # Nothing is left behind for a later guess to land on (a re-created request with no TTL).
    redis = app.state.runtime.redis
    leftovers = [k for k in await redis.keys("rabta:otp:req:*") if await redis.ttl(k) == -1]
    assert leftovers == []
    figure(
        f"OTP brute force, REST: 50 parallel guesses at one code -> {len(compared)} wrong "
        f"answers counted, the rest refused, the code burned (the right code then fails)"
    )


async def test_rest_codes_per_cnic_are_capped_per_hour(client, app, settings, registry):
    statuses = []
    for _ in range(CODES_PER_HOUR + 2):
        response = await client.post("/v1/otp", json={"cnic": ELIGIBLE_WIFE})
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert int(response.headers["retry-after"]) >= 1
        await pass_the_cooldown(app)
    assert statuses == [202] * CODES_PER_HOUR + [429, 429]
    # And without waiting a minute, the second request in a row is refused.
    await app.state.runtime.redis.flushdb()
    first = await client.post("/v1/otp", json={"cnic": ELIGIBLE_WIFE})
    second = await client.post("/v1/otp", json={"cnic": ELIGIBLE_WIFE})
    assert (first.status_code, second.status_code) == (202, 429)
    assert 1 <= int(second.headers["retry-after"]) <= 60
    guesses = CODES_PER_HOUR * MAX_TRIES
    figure(
        f"OTP brute force, REST: {CODES_PER_HOUR} codes per CNIC per hour, 60 s apart, "
        f"{MAX_TRIES} tries each: at most {guesses} guesses of 10^{CODE_DIGITS} per CNIC per "
        f"hour (p <= {guesses / 10**CODE_DIGITS:.1e})"
    )


async def test_sms_five_wrong_codes_end_the_verification(client, app, settings, registry):
    helper = Chat(client, HELPER_PHONE)
    await helper.send("LANG EN")
    asked = await helper.send(f"PAY {ELIGIBLE_WIFE}")
    assert "6-digit code" in asked
    right = await code_for(app, settings, ELIGIBLE_PHONE)
    replies = [await helper.send(guess) for guess in wrong_codes(right, MAX_TRIES)]
    assert all("not right" in r for r in replies[:-1]), replies
    assert "Too many wrong codes" in replies[-1]
    assert not any("Rs " in r for r in replies)
    # The code is burned: the right one typed now opens nothing.
    after = await helper.send(right)
    assert "Rs " not in after and "13,500" not in after
    figure(
        f"OTP brute force, SMS: {MAX_TRIES} wrong codes end the verification; the right code "
        f"typed afterwards opens nothing"
    )


async def test_sms_code_requests_are_capped_per_cnic(client, app, settings, registry, db):
    """A helper asking again and again: one code a minute, five an hour, for that CNIC."""
    from sqlalchemy import func, select

    from api.registry.models import OutboundMessage

    helper = Chat(client, HELPER_PHONE)
    await helper.send("LANG EN")
    for _ in range(CODES_PER_HOUR + 2):
        await helper.send(f"PAY {ELIGIBLE_WIFE}")
        await pass_the_cooldown(app)
    async with db.sessions() as session:
        codes = await session.scalar(
            select(func.count())
            .select_from(OutboundMessage)
            .where(OutboundMessage.kind == "otp", OutboundMessage.to == ELIGIBLE_PHONE)
        )
    assert codes <= CODES_PER_HOUR
    figure(
        f"OTP brute force, SMS: {CODES_PER_HOUR + 2} 'PAY <CNIC>' from a helper -> {codes} codes "
        f"sent to the registered mobile (cap {CODES_PER_HOUR}/hour)"
    )
