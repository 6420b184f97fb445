"""PostgreSQL restarted (immediate shutdown: every backend killed, crash recovery on start)
under a stream of SMS webhooks.

The contract: a 2xx with a reply only for a message whose MessageSid and reply are committed. A
CNIC look-up's record commits without waiting for the disk (api/hot.py): the crash may lose the
records of the look-ups answered in its last fraction of a second (their answers were given),
and nothing else; their replays are answered again, the same, and recorded. A
message whose answer meets the outage is held, not refused (Twilio does not send a message again
after a 503 unless the webhook URL's connection overrides ask it to): answered `200` with no
reply, kept in Redis while the database is away, and answered by SMS through the outbox once it
is back (api/held.py). Replaying every MessageSid afterwards (what a gateway's retries amount to)
leaves exactly one stored inbound row with one reply per message, and a message answered before
the restart gets the same reply again.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time

import httpx
import pytest
from sqlalchemy import func, select

from api import held
from api.db import Database
from api.migrate import upgrade_async
from api.registry.models import HeldMessage, InboundMessage, OutboundMessage
from tests.conftest import ELIGIBLE, fill_registry
from tests.faults.conftest import Result, run_load, serve_app, timed
from tests.faults.test_redis_outage import SMS_URL, random_cnic, sms_form, twiml_text
from tests.security.figures import figure

pytestmark = pytest.mark.slow

RATE = 80.0
BEFORE, DOWN, AFTER = 2.0, 1.5, 4.0

_names = itertools.count(1)


async def _count(db: Database, model: type) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_postgres_restarted_under_sms_traffic(private_cluster, fault_env, redis):
    name = f"rabta_fault_{next(_names)}_{time.time_ns() % 10**8}"
    await asyncio.to_thread(private_cluster.create_database, name)
    url = private_cluster.url(name)
    await upgrade_async(url)
    settings = fault_env(DATABASE_URL=url)
    db = Database.from_settings(settings)
    await fill_registry(db)
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
            down_at = time.monotonic()
            await asyncio.sleep(DOWN)
            await asyncio.to_thread(private_cluster.start)
            back_at = time.monotonic()
            record = await load
            sms = record.of("sms")
            assert not record.errors, record.errors[:5]

            # The test's own pool still holds connections from before the restart (no pre-ping,
            # api/db.py): start it afresh rather than spend a read on finding that out.
            await db.dispose()
            accepted = [r for r in sms if 200 <= r.status < 300 and twiml_text(r.body)]
            held_back = [r for r in sms if 200 <= r.status < 300 and not twiml_text(r.body)]
            refused = [r for r in sms if r.status >= 300]
            assert held_back, "the restart held nothing: it happened between requests?"
            assert {r.status for r in refused} <= {500, 503}, {r.status for r in refused}
            during = [r for r in sms if stopped_at <= r.at < back_at]
            # What was held, in Redis while the database was away, is answered once it is back.
            async with asyncio.timeout(60):  # liveness: a worker looks every 5 s
                while await redis.llen(held.SPILL_KEY) or await _count(db, HeldMessage):
                    await asyncio.sleep(0.2)
            answered_at = time.monotonic()
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
                sent_later = dict(
                    (
                        await session.execute(
                            select(OutboundMessage.dedup_key, OutboundMessage.body).where(
                                OutboundMessage.dedup_key.like("held:sms:SMpg%")
                            )
                        )
                    ).all()
                )
            # No reply given for a message that was not stored with it, but look-ups answered
            # within the crash's last fraction of a second (three times wal_writer_delay).
            unstored = [r for r in accepted if rows.get(r.key) != twiml_text(r.body)]
            lost = [r for r in unstored if r.key not in rows]
            assert unstored == lost, [r.key for r in unstored if r not in lost][:5]
            assert all(bodies[r.key][0].isdigit() for r in lost), [r.key for r in lost]
            # Sent before the crash, answered no earlier than a second before it.
            assert all(r.at < down_at and r.at + r.elapsed > stopped_at - 1.0 for r in lost), [
                (r.key, round(stopped_at - r.at - r.elapsed, 3)) for r in lost
            ]
            # Every held message answered, its reply stored and on its way by SMS, once.
            unanswered_held = [
                r.key
                for r in held_back
                if not rows.get(r.key) or sent_later.get(f"held:sms:{r.key}") != rows[r.key]
            ]
            assert not unanswered_held, unanswered_held[:5]
            assert set(sent_later) == {f"held:sms:{r.key}" for r in held_back}

            # The gateway sends every non-2xx again; replay every message, accepted ones too.
            replays: dict[str, httpx.Response] = {}
            async with httpx.AsyncClient(base_url=served.url, timeout=15) as http:
                for r in sms:
                    body, sender = bodies[r.key]
                    replays[r.key] = await http.post(SMS_URL, data=sms_form(body, r.key, sender))
        assert {response.status_code for response in replays.values()} == {200}
        changed = [r.key for r in accepted if twiml_text(replays[r.key].text) != twiml_text(r.body)]
        assert not changed, "a replay got another reply than the first answer"
        changed = [r.key for r in held_back if twiml_text(replays[r.key].text) != rows[r.key]]
        assert not changed, "a replay of a held message got another reply than its SMS"
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
        f"{len(accepted)} answered 2xx ({len(accepted) - len(lost)} stored with their reply; "
        f"{len(lost)} look-ups answered in the crash's last second not, their replays answered "
        f"the same), {len(held_back)} held "
        f"(kept in Redis while the database was away; all answered by SMS "
        f"{answered_at - back_at:.1f} s after it was back), {len(refused)} refused "
        f"({len(during)} sent while down), 0 other replies unstored; after replaying every "
        f"MessageSid: {len(per_sid)} messages, 1 stored row and 1 reply each, 0 lost, replays "
        f"identical to the first answer"
    )
