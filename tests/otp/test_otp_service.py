"""The OTP lifecycle against the real Redis (or the in-process substitute)."""

from __future__ import annotations

import asyncio
import time

import pytest

from api.otp.service import CheckOutcome, IssueOutcome, OtpService
from api.otp.tokens import BeneficiaryTokens

CNIC = "3520212345672"


@pytest.fixture
def otp(settings, redis) -> OtpService:
    return OtpService(redis, settings)


async def test_code_is_six_digits_and_works_once(otp, redis):
    issued = await otp.issue(cnic=CNIC, deliverable=True)
    assert issued.outcome is IssueOutcome.ISSUED
    assert issued.code and len(issued.code) == 6 and issued.code.isdigit()
    first = await otp.check(request_id=issued.request_id, code=issued.code)
    assert first.outcome is CheckOutcome.VERIFIED and first.cnic == CNIC
    again = await otp.check(request_id=issued.request_id, code=issued.code)
    assert again.outcome is CheckOutcome.EXPIRED


async def test_only_a_keyed_hash_is_stored(otp, redis):
    issued = await otp.issue(cnic=CNIC, deliverable=True)
    for key in await redis.keys("rabta:otp:*"):
        assert CNIC not in key
        value = await redis.hgetall(key) if await redis.type(key) == "hash" else {}
        assert issued.code not in str(value.get("hash", ""))
        assert issued.code not in str(value)
        assert CNIC not in str(value)  # sealed, beside a keyed hash of it


async def test_a_decoy_opens_with_no_code(otp, monkeypatch):
    """An unknown CNIC, or one with no mobile, gets a request that no code opens (SPEC §3: the
    answer looks the same, the code opens nothing): not even the code drawn for it."""
    import api.otp.service as otp_service

    monkeypatch.setattr(otp_service, "new_code", lambda: "482913")  # the draw, made known
    decoy = await otp.issue(cnic=CNIC, deliverable=False)
    assert decoy.outcome is IssueOutcome.ISSUED and decoy.code is None
    tried = await otp.check(request_id=decoy.request_id, code="482913")
    assert tried.outcome is CheckOutcome.WRONG and tried.cnic is None


async def test_code_expires_after_its_ttl(otp, redis):
    issued = await otp.issue(cnic=CNIC, deliverable=True)
    keys = [k for k in await redis.keys("rabta:otp:req:*")]
    assert len(keys) == 1
    ttl = await redis.ttl(keys[0])
    assert 290 <= ttl <= 300
    await redis.delete(keys[0])  # what expiry does
    result = await otp.check(request_id=issued.request_id, code=issued.code)
    assert result.outcome is CheckOutcome.EXPIRED


async def test_five_wrong_tries_burn_the_code(otp):
    issued = await otp.issue(cnic=CNIC, deliverable=True)
    wrong = "000000" if issued.code != "000000" else "111111"
    outcomes = [await otp.check(request_id=issued.request_id, code=wrong) for _ in range(5)]
    assert [o.outcome for o in outcomes] == [CheckOutcome.WRONG] * 4 + [CheckOutcome.EXHAUSTED]
    assert [o.tries_left for o in outcomes[:4]] == [4, 3, 2, 1]
    # The right code no longer helps once the tries are spent, and says why until it expires.
    late = await otp.check(request_id=issued.request_id, code=issued.code)
    assert late.outcome is CheckOutcome.EXHAUSTED and late.cnic is None


async def test_parallel_guesses_cannot_exceed_the_cap(otp):
    issued = await otp.issue(cnic=CNIC, deliverable=True)
    guesses = [f"{n:06d}" for n in range(50) if f"{n:06d}" != issued.code]
    results = await asyncio.gather(
        *[otp.check(request_id=issued.request_id, code=g) for g in guesses]
    )
    wrong = [r for r in results if r.outcome is CheckOutcome.WRONG]
    assert len(wrong) <= 4
    assert not any(r.outcome is CheckOutcome.VERIFIED for r in results)


async def test_resend_cooldown_then_hourly_cap(otp, redis):
    first = await otp.issue(cnic=CNIC, deliverable=True)
    assert first.outcome is IssueOutcome.ISSUED
    second = await otp.issue(cnic=CNIC, deliverable=True)
    assert second.outcome is IssueOutcome.COOLDOWN and 1 <= second.retry_after <= 60
    outcomes = []
    for _ in range(6):
        for key in await redis.keys("rabta:otp:cooldown:*"):
            await redis.delete(key)  # the minute passes
        outcomes.append((await otp.issue(cnic=CNIC, deliverable=True)).outcome)
    assert outcomes.count(IssueOutcome.ISSUED) == 4  # five in the hour, the first included
    assert outcomes[-1] is IssueOutcome.TOO_MANY


async def test_decoy_request_looks_the_same_and_opens_nothing(otp, redis):
    decoy = await otp.issue(cnic="6110100000017", deliverable=False)
    assert decoy.outcome is IssueOutcome.ISSUED and decoy.request_id and decoy.code is None
    real = await otp.issue(cnic=CNIC, deliverable=True)
    assert len(decoy.request_id) == len(real.request_id)
    for code in ("000000", "123456", "999999"):
        assert (await otp.check(request_id=decoy.request_id, code=code)).outcome in (
            CheckOutcome.WRONG,
            CheckOutcome.EXHAUSTED,
        )


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "۱۲۳۴۵۶", " 12 34 "])
async def test_malformed_codes_are_just_wrong(otp, code):
    issued = await otp.issue(cnic=CNIC, deliverable=True)
    result = await otp.check(request_id=issued.request_id, code=code)
    assert result.outcome is CheckOutcome.WRONG


async def test_tokens_are_bound_to_one_cnic_and_revocable(redis, settings):
    tokens = BeneficiaryTokens(redis, ttl_seconds=60, secret=settings.secret_key)
    token = await tokens.issue(cnic=CNIC)
    assert await tokens.resolve(token) == CNIC
    assert await tokens.resolve(token + "x") is None
    assert await tokens.resolve("not-a-token") is None
    for key in await redis.keys("rabta:token:*"):
        assert token not in key and CNIC not in await redis.get(key)  # sealed
    await tokens.revoke(token)
    assert await tokens.resolve(token) is None


async def test_burnt_code_waits_for_the_hourly_cap(otp, redis):
    """A code burnt when the CNIC's hour of codes is full: the wait is the hour's, not the
    resend cooldown's."""
    issued = await otp.issue(cnic=CNIC, deliverable=True)
    cooldown_key, hour_key = otp._issue_keys(CNIC)
    await redis.delete(cooldown_key)
    now = time.time()
    await redis.zadd(hour_key, {f"earlier{n}": now - 600 for n in range(4)})
    wrong = "000000" if issued.code != "000000" else "111111"
    outcomes = [await otp.check(request_id=issued.request_id, code=wrong) for _ in range(5)]
    assert outcomes[-1].outcome is CheckOutcome.EXHAUSTED
    assert 2990 <= outcomes[-1].retry_after <= 3000
