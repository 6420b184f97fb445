"""Redis killed (SIGKILL) and restarted under traffic.

SPEC §4: without Redis the service keeps answering, limiting per worker in process, and logs the
degradation; OTP issue fails closed with a clear "try later". Traffic: SMS webhooks from many
senders and `GET /v1/eligibility` at a steady rate over loopback HTTP, with Redis up, then
killed, then started again (empty, as after a crash without persistence).
"""

from __future__ import annotations

import asyncio
import random
import time

import httpx
import pytest
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import func, select

from api.partners import create_partner
from api.redis import connect_redis
from api.registry.models import InboundMessage
from tests.conftest import (
    ELIGIBLE,
    ELIGIBLE_WIFE,
    NOT_ELIGIBLE,
    UNDER_REVIEW,
    sms_form,
    twiml_messages,
)
from tests.faults.conftest import LoadRecord, Result, run_load, serve_app, timed
from tests.security.figures import figure

pytestmark = pytest.mark.slow

SMS_URL = "/webhooks/twilio/messaging"
RATE = 120.0  # requests per second, SMS and REST together
HEALTHY, OUTAGE, RECOVERY = 2.0, 3.0, 3.5  # seconds of each phase, at least
#: Requests answered in the outage and after it, at least: on a slow machine a phase lasts
#: longer rather than holding fewer requests (up to PHASE_BOUND seconds).
PHASE_ANSWERS, PHASE_BOUND = 120, 15.0


def random_cnic(rng: random.Random) -> str:
    return str(rng.randint(1, 7)) + "".join(str(rng.randint(0, 9)) for _ in range(12))


def twiml_text(body: str) -> str:
    return "".join(twiml_messages(body))


async def answered(record: LoadRecord, *, since: float, lasting: float) -> None:
    """Wait until `lasting` seconds after `since` and PHASE_ANSWERS requests sent since then
    have been answered, or PHASE_BOUND seconds after `since` at most."""
    await asyncio.sleep(max(0.0, since + lasting - time.monotonic()))
    while time.monotonic() < since + PHASE_BOUND:
        if sum(r.at >= since for r in record.results) >= PHASE_ANSWERS:
            return
        await asyncio.sleep(0.05)


async def test_a_restart_leaves_no_dead_connection_to_fail_a_command(fault_env, private_redis):
    """After a restart every pooled connection is dead; commands sent at once (each on its own
    pooled connection, as concurrent requests are) all succeed on a fresh one."""
    redis = connect_redis(fault_env(REDIS_URL=private_redis.url))
    width = 8

    async def hold(n: int) -> None:  # overlapping commands: `width` connections in the pool
        await redis.set(f"rabta:test:stale:{n}", n)
        await asyncio.sleep(0.05)
        await redis.get(f"rabta:test:stale:{n}")

    try:
        await asyncio.gather(*(hold(n) for n in range(width)))
        assert len(redis.connection_pool._available_connections) == width
        await asyncio.to_thread(private_redis.kill)
        await asyncio.to_thread(private_redis.start)
        answers = await asyncio.gather(
            *(redis.incr("rabta:test:stale:count") for _ in range(width)), return_exceptions=True
        )
        assert not [a for a in answers if isinstance(a, BaseException)], answers
        assert await redis.get("rabta:test:stale:count") == str(width)
    finally:
        await redis.aclose()


async def test_a_wedged_redis_fails_a_command_once_without_a_retry(fault_env):
    """A Redis that accepts connections and never answers: the command times out once, on one
    connection. Retrying a timeout would double the wait (and the connection's own handshake
    would be retried too: four connections, four seconds, per command)."""
    connections = 0

    async def wedged(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while await reader.read(1024):  # reads every command, answers none
            pass
        writer.close()

    server = await asyncio.start_server(wedged, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    redis = connect_redis(fault_env(REDIS_URL=f"redis://127.0.0.1:{port}/0"))
    try:
        with pytest.raises(RedisTimeoutError):
            await redis.get("rabta:test:wedged")
        assert connections == 1
    finally:
        await redis.aclose()
        server.close()
        await server.wait_closed()


async def test_redis_killed_and_restarted_under_traffic(
    registry, fault_env, private_redis, monkeypatch
):
    settings = fault_env(REDIS_URL=private_redis.url)
    rng = random.Random(8)
    known = [ELIGIBLE, ELIGIBLE_WIFE, NOT_ELIGIBLE, UNDER_REVIEW]
    run_id = f"{time.time_ns():x}"[-8:]

    # The REST load is one loopback address: a partner's, with a quota of its own, as one
    # address asking thousands of times an hour would be (an anonymous one is a sender).
    async with registry.transaction() as session:
        key = await create_partner(session, name="Fault load", quota="100000/minute")

    async def request(http: httpx.AsyncClient, i: int) -> Result:
        if i % 2:
            cnic = known[i % 4] if i % 6 == 1 else random_cnic(rng)
            url = f"/v1/eligibility/{cnic}"
            return await timed(http, "rest", "GET", url, headers={"X-API-Key": key})
        sid = f"SMfault{run_id}{i:06d}"
        # Many senders, two messages each: well under the 10 look-ups per sender per hour.
        sender = f"+92300{5000000 + i // 4:07d}"
        body = random_cnic(rng) if i % 8 else "HELP"
        return await timed(http, "sms", "POST", SMS_URL, key=sid, data=sms_form(body, sid, sender))

    async with serve_app(settings) as served:
        runtime = served.app.state.runtime
        limiter = runtime.rate_limiter
        # The limiter probes Redis again every 5 s while degraded; 1 s keeps the test short.
        monkeypatch.setattr(limiter, "_retry_redis_after", 1.0)
        finished = asyncio.Event()
        record = LoadRecord()
        bound = HEALTHY + 2 * PHASE_BOUND + 5  # the scenario stops it after the recovery phase
        load = asyncio.create_task(
            run_load(
                served.url,
                request,
                total=int(RATE * bound),
                rate=RATE,
                concurrency=6,
                deadline=bound,
                stop=finished,
                record=record,
            )
        )
        await asyncio.sleep(HEALTHY)
        assert not limiter.degraded
        killed_at = time.monotonic()
        await asyncio.to_thread(private_redis.kill)

        async with httpx.AsyncClient(base_url=served.url, timeout=15) as http:
            await asyncio.sleep(0.5)
            # OTP issue fails closed: 503 with Retry-After, never a code nobody can check.
            otp_down = await http.post("/v1/otp", json={"cnic": ELIGIBLE})
            # A flood sender during the outage: the in-process limiter still stops them.
            flood = []
            for n in range(12):
                sid = f"SMflood{run_id}{n:04d}"
                form = sms_form(random_cnic(rng), sid, "+923009999999")
                answer = await http.post(SMS_URL, data=form)
                flood.append((answer.status_code, twiml_text(answer.text)))
            degraded_during = limiter.degraded
            await answered(record, since=killed_at, lasting=OUTAGE)
            restarted_at = time.monotonic()
            await asyncio.to_thread(private_redis.start)
            # Back on Redis within the probe interval, with traffic flowing.
            recovered_after = None
            while time.monotonic() - restarted_at < RECOVERY:
                if not limiter.degraded:
                    recovered_after = time.monotonic() - restarted_at
                    break
                await asyncio.sleep(0.05)
            otp_up = await http.post("/v1/otp", json={"cnic": ELIGIBLE})
            await answered(record, since=restarted_at, lasting=RECOVERY)
        finished.set()
        await load

    # -- every request answered, none with a 5xx ----------------------------------------------
    assert not record.errors, record.errors[:5]
    assert not record.server_errors(), [
        (r.kind, r.status, r.body[:200]) for r in record.server_errors()
    ][:5]
    sms = record.of("sms")
    rest = record.of("rest")
    assert {r.status for r in sms} == {200}
    assert {r.status for r in rest} == {200}
    assert all(twiml_text(r.body) for r in sms), "an SMS got no reply"
    during = [r for r in record.results if killed_at <= r.at < restarted_at]
    after = [r for r in record.results if r.at >= restarted_at]
    assert len(during) > 100 and len(after) > 100
    # Every SMS answered 200 was stored (its MessageSid claimed with the reply).
    async with registry.sessions() as session:
        stored = await session.scalar(
            select(func.count())
            .select_from(InboundMessage)
            .where(
                InboundMessage.external_id.like(f"SMfault{run_id}%"),
                InboundMessage.reply.is_not(None),
            )
        )
    lost = len(sms) - stored
    assert lost == 0

    # -- OTP fails closed, then works again ---------------------------------------------------
    assert otp_down.status_code == 503
    assert otp_down.headers["content-type"].startswith("application/problem+json")
    assert otp_down.headers.get("retry-after")
    assert otp_up.status_code == 202, otp_up.text

    # -- rate limiting degrades to in-process, then comes back --------------------------------
    assert degraded_during
    assert recovered_after is not None, "rate limiting did not go back to Redis"
    assert all(status == 200 for status, _ in flood)
    replies = [text for _, text in flood]
    assert all(replies[:10]), "the first ten look-ups are answered"
    assert replies[10] and "*******" not in replies[10], "the 11th gets 'try again', no answer"
    assert replies[11] == "", "after the one 'try again' reply, silence"

    figure(
        f"Redis killed (SIGKILL) for {restarted_at - killed_at:.1f} s under "
        f"{record.rate():.0f} req/s "
        f"({len(sms)} SMS webhooks + {len(rest)} GET /v1/eligibility, {len(during)} during the "
        f"outage): 0 5xx, {lost} lost; rate limiting degraded to in-process (sender cap still "
        f"held: 10 answers, 1 'try again', then silence) and back on Redis "
        f"{recovered_after:.1f} s after restart; POST /v1/otp 503 + Retry-After while down, "
        f"202 after"
    )
