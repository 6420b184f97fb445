"""PostgreSQL restarted (immediate shutdown: every backend killed, crash recovery on start)
under a stream of SMS webhooks.

The contract: a 2xx only for a message whose MessageSid and reply are committed; anything else
gets a non-2xx, for the gateway to send again (Twilio does when the webhook URL's connection
overrides ask it to retry a 5xx). Replaying every MessageSid afterwards (what such retries
amount to) leaves exactly one stored inbound row with one reply per message, and a message
answered before the restart gets the same reply again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import random
import time

import httpx
import pytest
from sqlalchemy import func, select

from api.db import Database
from api.migrate import upgrade_async
from api.registry.models import Household, InboundMessage, Person
from tests.conftest import ELIGIBLE, ELIGIBLE_PHONE
from tests.faults.conftest import Result, run_load, serve_app, timed
from tests.faults.test_redis_outage import SMS_URL, random_cnic, sms_form, twiml_text
from tests.security.figures import figure

pytestmark = pytest.mark.slow

RATE = 80.0
BEFORE, DOWN, AFTER = 2.0, 1.5, 4.0

_names = itertools.count(1)


async def seed(db: Database) -> None:
    async with db.transaction() as session:
        session.add(
            Household(
                household_id="HH-PB-0001",
                pmt_score=18.5,
                province="Punjab",
                district="Lahore",
                tehsil="Lahore City",
                survey_date=dt.date(2021, 3, 4),
                status="active",
            )
        )
        await session.flush()
        session.add(
            Person(
                cnic=ELIGIBLE,
                household_id="HH-PB-0001",
                full_name="Muhammad Aslam",
                gender="M",
                birth_date=dt.date(1975, 5, 1),
                relation="head",
                mobile=ELIGIBLE_PHONE,
                cnic_expiry=dt.date(2030, 1, 1),
            )
        )


async def test_postgres_restarted_under_sms_traffic(private_cluster, fault_env, redis):
    name = f"rabta_fault_{next(_names)}_{time.time_ns() % 10**8}"
    await asyncio.to_thread(private_cluster.create_database, name)
    url = private_cluster.url(name)
    await upgrade_async(url)
    settings = fault_env(DATABASE_URL=url)
    db = Database.from_settings(settings)
    await seed(db)
    rng = random.Random(5)
    bodies: dict[str, tuple[str, str]] = {}

    async def request(http: httpx.AsyncClient, i: int) -> Result:
        sid = f"SMpg{i:08d}"
        sender = f"+92301{6000000 + i:07d}"
        # The registered CNIC a few times only: under its 20 look-ups a day (see docs/security.md,
        # residual risks, for what a refused look-up caught by the outage gets on its retry).
        body = ELIGIBLE if i % 40 == 0 else ("HELP" if i % 7 == 0 else random_cnic(rng))
        bodies[sid] = (body, sender)
        return await timed(http, "sms", "POST", SMS_URL, key=sid, data=sms_form(body, sid, sender))

    try:
        async with serve_app(settings) as served:
            load = asyncio.create_task(
                run_load(
                    served.url,
                    request,
                    total=int(RATE * 30),
                    rate=RATE,
                    concurrency=6,
                    deadline=BEFORE + DOWN + AFTER + 4,  # + the cluster's recovery time
                )
            )
            await asyncio.sleep(BEFORE)
            stopped_at = time.monotonic()
            await asyncio.to_thread(private_cluster.stop, "immediate")
            await asyncio.sleep(DOWN)
            await asyncio.to_thread(private_cluster.start)
            back_at = time.monotonic()
            record = await load
            sms = record.of("sms")
            assert not record.errors, record.errors[:5]

            # The test's own pool still holds connections from before the restart (no pre-ping,
            # api/db.py): start it afresh rather than spend a read on finding that out.
            await db.dispose()
            async with db.sessions() as session:
                rows = dict(
                    (
                        await session.execute(
                            select(InboundMessage.external_id, InboundMessage.reply).where(
                                InboundMessage.external_id.like("SMpg%")
                            )
                        )
                    ).all()
                )
            accepted = [r for r in sms if 200 <= r.status < 300]
            refused = [r for r in sms if r.status >= 300]
            # No 2xx for a message that was not stored, with the reply that was sent.
            unstored = [r.key for r in accepted if rows.get(r.key) != twiml_text(r.body)]
            assert not unstored, unstored[:5]
            assert refused, "the restart refused nothing: it happened between requests?"
            assert {r.status for r in refused} <= {500, 503}, {r.status for r in refused}
            during = [r for r in sms if stopped_at <= r.at < back_at]

            # The gateway sends every non-2xx again; replay every message, accepted ones too.
            replays: dict[str, httpx.Response] = {}
            async with httpx.AsyncClient(base_url=served.url, timeout=15) as http:
                for r in sms:
                    body, sender = bodies[r.key]
                    replays[r.key] = await http.post(SMS_URL, data=sms_form(body, r.key, sender))
        assert {response.status_code for response in replays.values()} == {200}
        changed = [r.key for r in accepted if twiml_text(replays[r.key].text) != twiml_text(r.body)]
        assert not changed, "a replay got another reply than the first answer"
        async with db.sessions() as session:
            per_sid = dict(
                (
                    await session.execute(
                        select(InboundMessage.external_id, func.count())
                        .where(InboundMessage.external_id.like("SMpg%"))
                        .group_by(InboundMessage.external_id)
                    )
                ).all()
            )
            unanswered = await session.scalar(
                select(func.count())
                .select_from(InboundMessage)
                .where(InboundMessage.external_id.like("SMpg%"), InboundMessage.reply.is_(None))
            )
        assert set(per_sid) == {r.key for r in sms}
        assert set(per_sid.values()) == {1}
        assert unanswered == 0
        for r in refused:
            assert twiml_text(replays[r.key].text), "a retried message got no reply"
    finally:
        await db.dispose()

    figure(
        f"PostgreSQL restarted (immediate stop, {back_at - stopped_at:.1f} s without a database) "
        f"under {record.rate():.0f} req/s of SMS webhooks: {len(sms)} messages, "
        f"{len(accepted)} answered 2xx (all stored with their reply), {len(refused)} refused "
        f"with {sorted({r.status for r in refused})} ({len(during)} sent while down), 0 2xx "
        f"unstored; after replaying every MessageSid: {len(per_sid)} messages, 1 stored row "
        f"and 1 reply each, 0 lost, replays of accepted messages identical"
    )
