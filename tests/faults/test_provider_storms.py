"""Provider 5xx and 429 storms: Twilio answering 500 for a minute, then 429 with Retry-After for
another, then recovering. The real Twilio sender talks to a fake Messages API on loopback; the
outbox is driven on a simulated clock (`deliver_due(now=…)`), so minutes of backoff take
milliseconds and every retry's spacing can be checked."""

from __future__ import annotations

import datetime as dt
import itertools
import secrets
from collections import Counter
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from sqlalchemy import func, select

from api.outbox.senders import TwilioSender
from api.outbox.service import BACKOFF_BASE_SECONDS, MAX_ATTEMPTS, deliver_due, enqueue
from api.registry.models import OutboundMessage
from tests.outbox.conftest import serve, twilio_created
from tests.outbox.test_senders import twilio_settings
from tests.security.figures import figure

MESSAGES = 40
ERRORS_UNTIL = 60.0  # simulated seconds of 500s
THROTTLED_UNTIL = 150.0  # then 429s until here
RETRY_AFTER = 20


@dataclass
class StormTwilio:
    """Twilio's Messages API through a storm, by simulated time."""

    now: float = 0.0
    calls: list[tuple[float, str, int]] = field(default_factory=list)  # (time, body, status)

    async def create(self, request: web.Request) -> web.Response:
        form = await request.post()
        body = str(form.get("Body", ""))
        if self.now < ERRORS_UNTIL:
            self.calls.append((self.now, body, 500))
            return web.json_response(
                {"code": 20500, "message": "Internal Server Error", "status": 500}, status=500
            )
        if self.now < THROTTLED_UNTIL:
            self.calls.append((self.now, body, 429))
            return web.json_response(
                {"code": 20429, "message": "Too Many Requests", "status": 429},
                status=429,
                headers={"Retry-After": str(RETRY_AFTER)},
            )
        self.calls.append((self.now, body, 201))
        return twilio_created(request, form, "SM" + secrets.token_hex(16))


def aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@pytest.mark.slow
async def test_provider_5xx_then_429_storm_then_everything_delivered(db, settings):
    storm = StormTwilio()
    app = web.Application()
    app.router.add_post("/2010-04-01/Accounts/{account}/Messages.json", storm.create)
    async with db.transaction() as session:
        for i in range(MESSAGES):
            await enqueue(
                session,
                channel="sms",
                to=f"+92300{7000000 + i:07d}",
                body=f"storm message {i:03d}",
                kind="grievance_update",
            )
    # Simulated time 0 is just after the enqueue (which stamps the real clock): all rows are due.
    start = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)

    def at(seconds: float) -> dt.datetime:
        return start + dt.timedelta(seconds=seconds)

    passes = 0
    async with serve(app) as url:
        sender = TwilioSender(twilio_settings(settings), "sms", api_base_url=url)
        try:
            while passes < 300:
                passes += 1
                await deliver_due(
                    db, {"sms": sender}, worker_id="storm", now=at(storm.now), limit=50
                )
                async with db.sessions() as session:
                    pending = await session.scalar(
                        select(func.min(OutboundMessage.next_attempt_at)).where(
                            OutboundMessage.status == "pending"
                        )
                    )
                if pending is None:
                    break
                # Jump to the next moment anything is due (the worker would sleep until then).
                storm.now = max(storm.now + 0.001, (aware(pending) - start).total_seconds())
        finally:
            await sender.aclose()

    async with db.sessions() as session:
        rows = list(await session.scalars(select(OutboundMessage).order_by(OutboundMessage.id)))
    assert {row.status for row in rows} == {"sent"}, "not everything was delivered"
    accepted = [body for _, body, status in storm.calls if status == 201]
    assert sorted(accepted) == sorted(row.body for row in rows), "lost or duplicated"

    errors = [(t, body) for t, body, status in storm.calls if status == 500]
    throttled = [t for t, _, status in storm.calls if status == 429]
    assert errors and throttled
    # 5xx: each message's retries back off exponentially (10 s · 2^(n-1), jitter down to half).
    for row in rows:
        times = [t for t, body in errors if body == row.body]
        for n, (earlier, later) in enumerate(itertools.pairwise(times), start=1):
            assert later - earlier >= BACKOFF_BASE_SECONDS * 2 ** (n - 1) / 2 - 1e-3
    # 429: a message Twilio answered "retry after R" is not sent again for R seconds, and the
    # rest of that batch is held back too (released unsent, not refused one by one).
    for row in rows:
        mine = [(t, status) for t, body, status in storm.calls if body == row.body]
        for (t, status), (later, _) in itertools.pairwise(mine):
            if status == 429:
                assert later >= t + RETRY_AFTER - 1e-3, (row.body, mine)
    per_pass = Counter(t for t in throttled)
    assert max(per_pass.values()) <= 8, "a batch kept sending after its first 429"
    # Pacing by 429 is not an attempt: only the 5xx answers and the success count.
    for row in rows:
        failures = sum(1 for _, body in errors if body == row.body)
        assert row.attempts == failures + 1 <= MAX_ATTEMPTS
    delivered_at = max(t for t, _, status in storm.calls if status == 201)
    figure(
        f"Twilio storm ({ERRORS_UNTIL:.0f} s of 500s, then 429 Retry-After {RETRY_AFTER} s until "
        f"{THROTTLED_UNTIL:.0f} s, simulated clock): {MESSAGES} messages, {len(errors)} 500s "
        f"retried with exponential backoff, {len(throttled)} 429s honoured (no message re-sent "
        f"inside its Retry-After, not counted as attempts), all {MESSAGES} delivered by "
        f"{delivered_at:.0f} s, 0 lost, 0 duplicates, max attempts "
        f"{max(row.attempts for row in rows)}/{MAX_ATTEMPTS}"
    )
