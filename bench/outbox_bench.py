"""Outbox delivery rate: N messages, W worker processes, the real TwilioSender, a fake Twilio.

    .venv/bin/python bench/outbox_bench.py --messages 5000 --workers 1 2

Each worker is a separate process with its own database pool, as `rabta worker` would run. The
fake Twilio API (another process) answers every create after a fixed latency (20 ms by default)
and counts requests, so the run also checks that every message was sent exactly once.
Needs PostgreSQL (DATABASE_URL, default the `rabta_outbox` database); the outbox table is
emptied before each run.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing as mp
import os
import secrets
import sys
import time
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/rabta_outbox"
ACCOUNT = "AC" + "0" * 32


# -- the fake provider -----------------------------------------------------------------------


def _fake_twilio(port_out: Any, latency: float) -> None:
    from aiohttp import web

    counts: dict[str, int] = {}

    async def create(request: web.Request) -> web.Response:
        form = await request.post()
        await asyncio.sleep(latency)
        key = str(form.get("Body"))
        counts[key] = counts.get(key, 0) + 1
        return web.json_response(
            {"sid": "SM" + secrets.token_hex(16), "status": "queued", "to": form.get("To")},
            status=201,
        )

    async def stats(request: web.Request) -> web.Response:
        duplicates = sum(1 for n in counts.values() if n > 1)
        return web.json_response(
            {"requests": sum(counts.values()), "distinct": len(counts), "duplicates": duplicates}
        )

    async def reset(request: web.Request) -> web.Response:
        counts.clear()
        return web.json_response({})

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{account}/Messages.json", create)
        app.router.add_get("/stats", stats)
        app.router.add_post("/reset", reset)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port_out.send(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(main())


# -- a worker process ------------------------------------------------------------------------


def _settings(database_url: str) -> Any:
    from api.settings import Settings

    return Settings().model_copy(
        update={
            "database_url": database_url,
            "registry_database_url": None,
            "twilio_account_sid": ACCOUNT,
            "twilio_auth_token": "bench-token",
            "twilio_from": "+15005550006",
            "outbound": "twilio",
            "public_base_url": "https://rabta.example.org",
        }
    )


def _worker(
    index: int,
    database_url: str,
    fake_url: str,
    batch: int,
    concurrency: int,
    go: MpEvent,
    cpu_out: Any,
) -> None:
    from api.db import Database
    from api.outbox.senders import TwilioSender
    from api.outbox.service import deliver_due

    async def main() -> None:
        settings = _settings(database_url)
        db = Database.from_settings(settings)
        sender = TwilioSender(settings, "sms", api_base_url=fake_url)
        async with db.engine.connect():  # warm the pool before the clock starts
            pass
        go.wait()
        cpu_start = time.process_time()
        try:
            while True:
                report = await deliver_due(
                    db,
                    {"sms": sender},
                    worker_id=f"bench-{index}",
                    limit=batch,
                    concurrency=concurrency,
                )
                if report.claimed == 0:
                    break
        finally:
            cpu_out.put(time.process_time() - cpu_start)
            await sender.aclose()
            await db.dispose()

    asyncio.run(main())


# -- one run ---------------------------------------------------------------------------------


async def _prepare(database_url: str, messages: int, recipients: int) -> None:
    from sqlalchemy import delete, insert

    from api.db import Database
    from api.migrate import upgrade_async
    from api.registry.models import OutboundMessage

    await upgrade_async(database_url)
    db = Database.from_settings(_settings(database_url))
    now = dt.datetime.now(dt.UTC)
    try:
        async with db.transaction() as session:
            await session.execute(delete(OutboundMessage))
            rows = [
                {
                    "channel": "sms",
                    "to": f"+92300{i % recipients:07d}",
                    "body": f"Bench message {i}: aap ki shikayat ka jawab aa gaya hai.",
                    "kind": "bench",
                    "priority": 9,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for i in range(messages)
            ]
            for start in range(0, len(rows), 1000):
                await session.execute(insert(OutboundMessage), rows[start : start + 1000])
    finally:
        await db.dispose()


async def _outcome(database_url: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from api.db import Database
    from api.registry.models import OutboundMessage

    db = Database.from_settings(_settings(database_url))
    try:
        async with db.sessions() as session:
            result = await session.execute(
                select(OutboundMessage.status, func.count()).group_by(OutboundMessage.status)
            )
            return {status: count for status, count in result.all()}
    finally:
        await db.dispose()


def _fake_stats(fake_url: str, path: str = "/stats", method: str = "GET") -> dict[str, int]:
    import httpx

    response = httpx.request(method, fake_url + path, timeout=10)
    response.raise_for_status()
    data: dict[str, int] = response.json()
    return data


def run(
    workers: int,
    *,
    messages: int,
    database_url: str,
    fake_url: str,
    batch: int,
    concurrency: int,
    recipients: int,
) -> float:
    """Deliver `messages` with `workers` processes; returns messages per second."""
    asyncio.run(_prepare(database_url, messages, recipients))
    _fake_stats(fake_url, "/reset", "POST")
    ctx = mp.get_context("spawn")
    go = ctx.Event()
    cpu = ctx.Queue()
    procs = [
        ctx.Process(
            target=_worker,
            args=(i, database_url, fake_url, batch, concurrency, go, cpu),
            daemon=True,
        )
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()
    time.sleep(3)  # let the workers import and connect: the clock measures delivery only
    started = time.perf_counter()
    go.set()
    for proc in procs:
        proc.join()
    elapsed = time.perf_counter() - started
    cpu_seconds = sum(cpu.get(timeout=10) for _ in procs)
    outcome = asyncio.run(_outcome(database_url))
    stats = _fake_stats(fake_url)
    rate = messages / elapsed
    print(
        f"workers={workers} messages={messages} elapsed={elapsed:.2f}s rate={rate:,.0f} msg/s "
        f"worker CPU {cpu_seconds / messages * 1000:.2f} ms/msg; outbox={outcome} provider={stats}"
    )
    if outcome.get("sent") != messages or stats["duplicates"] or stats["requests"] != messages:
        print("  !! not every message was sent exactly once", file=sys.stderr)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=8, help="parallel sends per worker")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="fake provider latency")
    parser.add_argument("--recipients", type=int, default=2000, help="distinct phone numbers")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", DEFAULT_URL))
    args = parser.parse_args()
    if not args.database_url.startswith("postgresql"):
        parser.error("the benchmark needs PostgreSQL: SQLite serves one worker process")

    ctx = mp.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    fake = ctx.Process(target=_fake_twilio, args=(sender, args.latency_ms / 1000), daemon=True)
    fake.start()
    fake_url = f"http://127.0.0.1:{receiver.recv()}"
    print(
        f"fake Twilio at {fake_url} ({args.latency_ms:.0f} ms per request); batch {args.batch}, "
        f"{args.concurrency} parallel sends per worker; {os.cpu_count()} CPUs"
    )
    try:
        for workers in args.workers:
            run(
                workers,
                messages=args.messages,
                database_url=args.database_url,
                fake_url=fake_url,
                batch=args.batch,
                concurrency=args.concurrency,
                recipients=args.recipients,
            )
    finally:
        fake.terminate()
        fake.join()


if __name__ == "__main__":
    main()
