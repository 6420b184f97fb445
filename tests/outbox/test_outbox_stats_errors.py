"""`rabta outbox stats` says why messages did not arrive: Twilio's delivery errors (30003
unreachable handset, 30007 carrier filtering, …) come back as `undelivered`, and an operator
must see them there as she sees a refused send's under `failed`."""

from __future__ import annotations

import asyncio
import datetime as dt

from typer.testing import CliRunner

from api.cli import app
from api.registry.models import OutboundMessage


async def test_stats_show_the_latest_error_of_undelivered_messages(settings, db):
    now = dt.datetime.now(dt.UTC)
    rows = [
        ("undelivered", "twilio error 30007"),
        ("failed", "twilio 400 error 21211"),
    ]
    async with db.transaction() as session:
        for i, (status, error) in enumerate(rows):
            session.add(
                OutboundMessage(
                    channel="sms",
                    to="+923001110004",
                    body="x",
                    kind="grievance_update",
                    status=status,
                    error=error,
                    next_attempt_at=now - dt.timedelta(minutes=5),
                    created_at=now - dt.timedelta(minutes=5),
                    dedup_key=f"stats-error-{i}",
                )
            )
    result = await asyncio.to_thread(
        CliRunner(env={"COLUMNS": "200"}).invoke, app, ["outbox", "stats"]
    )
    assert result.exit_code == 0, result.output
    assert "twilio 400 error 21211" in result.output
    assert "twilio error 30007" in result.output
