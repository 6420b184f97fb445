"""Resuming a live code: the same requester asking again for the same CNIC gets its request back
(no new code, no cooldown); anyone else still meets the cooldown; a used or exhausted code is not
resumed; the caps stay as they were; Redis keys hold only keyed hashes."""

from __future__ import annotations

import pytest

from api.otp.service import CheckOutcome, IssueOutcome, OtpService
from api.verification import requester

CNIC = "3520212345672"
HELPER = requester("ussd", "+923219876543")
OTHER = requester("ussd", "+923331112222")


@pytest.fixture
def otp(settings, redis) -> OtpService:
    return OtpService(redis, settings)


async def pass_the_cooldown(redis) -> None:
    for key in await redis.keys("rabta:otp:cooldown:*"):
        await redis.delete(key)


def wrong(code: str | None) -> str:
    return "000000" if code != "000000" else "111111"


async def test_the_same_requester_gets_its_live_code_back(otp, redis):
    first = await otp.issue(cnic=CNIC, deliverable=True, requester=HELPER)
    assert first.outcome is IssueOutcome.ISSUED and first.expires_in == 300
    again = await otp.issue(cnic=CNIC, deliverable=True, requester=HELPER)
    assert again.outcome is IssueOutcome.RESUMED
    assert again.request_id == first.request_id and again.code is None
    assert 290 <= again.expires_in <= 300 and again.retry_after == 0
    # Also once the cooldown is over: still the same code, none new counted this hour.
    await pass_the_cooldown(redis)
    later = await otp.issue(cnic=CNIC, deliverable=True, requester=HELPER)
    assert later.outcome is IssueOutcome.RESUMED and later.request_id == first.request_id
    assert len(await redis.zrange((await redis.keys("rabta:otp:hour:*"))[0], 0, -1)) == 1
    checked = await otp.check(request_id=later.request_id, code=first.code)
    assert checked.outcome is CheckOutcome.VERIFIED and checked.cnic == CNIC


async def test_another_requester_meets_the_cooldown(otp):
    await otp.issue(cnic=CNIC, deliverable=True, requester=HELPER)
    other = await otp.issue(cnic=CNIC, deliverable=True, requester=OTHER)
    assert other.outcome is IssueOutcome.COOLDOWN and 1 <= other.retry_after <= 60
    assert other.request_id is None
    # The same phone on another channel is another requester too.
    sms = await otp.issue(cnic=CNIC, deliverable=True, requester=requester("sms", "+923219876543"))
    assert sms.outcome is IssueOutcome.COOLDOWN
    # And a request with no requester (REST, the agent console) never resumes anything.
    anonymous = await otp.issue(cnic=CNIC, deliverable=True)
    assert anonymous.outcome is IssueOutcome.COOLDOWN


async def test_only_the_cnic_the_code_is_for(otp):
    await otp.issue(cnic=CNIC, deliverable=True, requester=HELPER)
    other_cnic = await otp.issue(cnic="3520212345671", deliverable=True, requester=HELPER)
    assert other_cnic.outcome is IssueOutcome.ISSUED


async def test_a_used_code_is_not_resumed(otp, redis):
    first = await otp.issue(cnic=CNIC, deliverable=True, requester=HELPER)
    assert (await otp.check(request_id=first.request_id, code=first.code)).outcome is (
        CheckOutcome.VERIFIED
    )
    assert (await otp.issue(cnic=CNIC, deliverable=True, requester=HELPER)).outcome is (
        IssueOutcome.COOLDOWN
    )
    await pass_the_cooldown(redis)
    fresh = await otp.issue(cnic=CNIC, deliverable=True, requester=HELPER)
    assert fresh.outcome is IssueOutcome.ISSUED and fresh.request_id != first.request_id


async def test_an_exhausted_code_is_not_resumed_and_tries_are_not_reset(otp, redis):
    first = await otp.issue(cnic=CNIC, deliverable=True, requester=HELPER)
    for _ in range(4):
        assert (await otp.check(request_id=first.request_id, code=wrong(first.code))).outcome is (
            CheckOutcome.WRONG
        )
    # Resuming keeps the tries spent: one left.
    resumed = await otp.issue(cnic=CNIC, deliverable=True, requester=HELPER)
    assert resumed.outcome is IssueOutcome.RESUMED
    last = await otp.check(request_id=resumed.request_id, code=wrong(first.code))
    assert last.outcome is CheckOutcome.EXHAUSTED
    assert (await otp.issue(cnic=CNIC, deliverable=True, requester=HELPER)).outcome is (
        IssueOutcome.COOLDOWN
    )
    await pass_the_cooldown(redis)
    fresh = await otp.issue(cnic=CNIC, deliverable=True, requester=HELPER)
    assert fresh.outcome is IssueOutcome.ISSUED and fresh.request_id != first.request_id


async def test_an_expired_code_is_not_resumed(otp, redis):
    first = await otp.issue(cnic=CNIC, deliverable=True, requester=HELPER)
    for key in await redis.keys("rabta:otp:req:*"):
        await redis.delete(key)  # what five minutes do
    await pass_the_cooldown(redis)
    fresh = await otp.issue(cnic=CNIC, deliverable=True, requester=HELPER)
    assert fresh.outcome is IssueOutcome.ISSUED and fresh.request_id != first.request_id


async def test_the_hourly_cap_still_holds(otp, redis):
    outcomes = []
    for _ in range(7):
        issued = await otp.issue(cnic=CNIC, deliverable=True, requester=HELPER)
        outcomes.append(issued.outcome)
        if issued.request_id and issued.code:
            await otp.check(request_id=issued.request_id, code=issued.code)  # used up
        await pass_the_cooldown(redis)
    assert outcomes == [IssueOutcome.ISSUED] * 5 + [IssueOutcome.TOO_MANY] * 2


async def test_a_decoy_is_not_bound(otp, redis):
    await otp.issue(cnic="6110100000017", deliverable=False, requester=HELPER)
    assert await redis.keys("rabta:otp:resume:*") == []


async def test_the_binding_lives_as_long_as_the_code_and_names_no_one(otp, redis):
    first = await otp.issue(cnic=CNIC, deliverable=True, requester=HELPER)
    (binding,) = await redis.keys("rabta:otp:resume:*")
    assert 290 <= await redis.ttl(binding) <= 300
    assert await redis.get(binding) == first.request_id
    for key in await redis.keys("*"):
        for secret in (CNIC, "3219876543", "923219876543", "ussd"):
            assert secret not in key, key
