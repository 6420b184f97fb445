"""`rabta outbox stats`: every message waiting or being sent, and only a day of those done."""

from __future__ import annotations

import asyncio
import datetime as dt

from typer.testing import CliRunner

from api.cli import app
from api.outbox.cli import _stats
from api.registry.models import OutboundMessage


async def test_stats_count_what_waits_and_a_day_of_what_is_done(settings, db):
    """A message waiting three days still counts; one sent three days ago does not (the outbox
    keeps every message ever sent: counting them all read the whole table); the output says so."""
    now = dt.datetime.now(dt.UTC)
    rows = [
        # (status, last tried how long ago)
        ("pending", dt.timedelta(days=3)),
        ("sending", dt.timedelta(minutes=1)),
        ("sent", dt.timedelta(days=3)),
        ("sent", dt.timedelta(hours=2)),
        ("delivered", dt.timedelta(hours=23)),
        ("failed", dt.timedelta(days=2)),
    ]
    async with db.transaction() as session:
        for i, (status, ago) in enumerate(rows):
            session.add(
                OutboundMessage(
                    channel="sms",
                    to="+923001110004",
                    body="x",
                    kind="reply",
                    status=status,
                    next_attempt_at=now - ago,
                    created_at=now - ago,
                    dedup_key=f"stats-{i}",
                )
            )
    counts = {status: n for _, status, n, _, _ in await _stats(settings, now=now)}
    assert counts == {"pending": 1, "sending": 1, "sent": 1, "delivered": 1}
    result = await asyncio.to_thread(
        CliRunner(env={"COLUMNS": "200"}).invoke, app, ["outbox", "stats"]
    )
    assert result.exit_code == 0, result.output
    assert "other statuses: messages last tried in the past 24 hours" in result.output
