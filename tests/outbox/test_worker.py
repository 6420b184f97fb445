"""The delivery loop: `rabta worker --once`, the embedded worker, graceful stop, the CLI."""

from __future__ import annotations

import asyncio
import json
import logging

from sqlalchemy import select
from typer.testing import CliRunner

from api.outbox.service import enqueue
from api.outbox.worker import EmbeddedWorker, run_worker
from api.registry.models import OutboundMessage
from tests.outbox.conftest import RecordingSender

PHONE = "+923001234567"


async def add(db, n: int, **fields) -> None:
    async with db.transaction() as session:
        for i in range(n):
            await enqueue(
                session,
                **({"channel": "sms", "to": PHONE, "body": f"message {i}", "kind": "x"} | fields),
            )


async def statuses(db) -> list[str]:
    async with db.sessions() as session:
        return list(
            await session.scalars(select(OutboundMessage.status).order_by(OutboundMessage.id))
        )


async def test_run_worker_once_delivers_everything_due_to_the_console(db, settings, caplog):
    await add(db, 120)
    with caplog.at_level(logging.INFO, logger="api.outbox.worker"):
        report = await run_worker(settings, once=True, batch=50, db=db)
    # The operator is told at start that messages go to a file, not to phones.
    assert "delivering sms, telegram, whatsapp through console" in caplog.text
    assert report.sent == 120
    assert await statuses(db) == ["sent"] * 120
    lines = settings.console_outbox.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 120
    assert {json.loads(line)["channel"] for line in lines} == {"sms"}


async def test_run_worker_stops_when_asked_and_hands_the_batch_back(db, settings):
    await add(db, 10)
    stop = asyncio.Event()
    slow = RecordingSender(delay=0.05)

    async def stop_soon(message):
        stop.set()

    slow.hook = stop_soon
    report = await asyncio.wait_for(
        run_worker(settings, stop=stop, db=db, senders={"sms": slow}, concurrency=1), timeout=10
    )
    assert report.sent == 1 and report.released == 9
    assert (await statuses(db)).count("pending") == 9


async def test_run_worker_survives_a_database_outage(settings, db, caplog):
    """It keeps trying, and says so in one line a pass: a database that is away is the
    operator's news, not a traceback every few seconds."""
    broken = settings.model_copy(
        update={"database_url": "postgresql+asyncpg://nobody@127.0.0.1:9/none"}
    )
    stop = asyncio.Event()
    with caplog.at_level(logging.INFO, logger="api.outbox.worker"):
        task = asyncio.create_task(
            run_worker(broken, stop=stop, poll_interval=0.05, senders={"sms": RecordingSender()})
        )
        await asyncio.sleep(0.5)
        assert not task.done()  # still trying, not crashed
        stop.set()
        report = await asyncio.wait_for(task, timeout=10)
    assert report.claimed == 0
    failures = [r for r in caplog.records if "delivery pass failed" in r.getMessage()]
    assert failures, caplog.text
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in failures)
    assert "the database is unavailable" in failures[0].getMessage()


async def test_embedded_worker_delivers_in_the_background(db, settings):
    worker = EmbeddedWorker(settings, db=db, poll_interval=0.05)
    worker.start()
    try:
        await add(db, 3)
        for _ in range(100):
            if await statuses(db) == ["sent"] * 3:
                break
            await asyncio.sleep(0.05)
        assert await statuses(db) == ["sent"] * 3
        assert worker.running
    finally:
        await worker.stop()
    assert not worker.running


def test_worker_command_once(settings, migrated, monkeypatch):
    import typer

    import api.logs
    from api.outbox.cli import worker

    # The command configures process-wide logging; the test run keeps pytest's.
    monkeypatch.setattr(api.logs, "configure_logging", lambda **_: None)

    app = typer.Typer()
    app.command()(worker)
    app.command("noop")(lambda: None)  # two commands, so `worker` is addressed by name
    result = CliRunner().invoke(app, ["worker", "--once", "--batch", "10"])
    assert result.exit_code == 0, result.output
    assert "sent" in result.output
