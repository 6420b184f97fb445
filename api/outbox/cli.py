"""`rabta worker` (deliver the outbox) and `rabta outbox stats|tail`."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from api.cli_support import err, settings_or_exit
from api.settings import Settings

if TYPE_CHECKING:
    from api.outbox.service import DeliveryReport

console = Console()

outbox_app = typer.Typer(help="The outbound message queue.", no_args_is_help=True)


def worker(
    once: Annotated[
        bool, typer.Option("--once", help="Deliver what is due now, then exit.")
    ] = False,
    batch: Annotated[int, typer.Option(min=1, max=1000, help="Messages claimed at a time.")] = 50,
    concurrency: Annotated[
        int, typer.Option(min=1, max=200, help="Recipients sent to in parallel.")
    ] = 8,
    poll_interval: Annotated[
        float, typer.Option(min=0.05, help="Seconds between looks when nothing is due.")
    ] = 1.0,
    worker_id: Annotated[
        str | None, typer.Option(help="Name recorded in claimed_by (default host-pid-random).")
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            envvar="RABTA_WORKER_METRICS_PORT",
            help="Serve this worker's Prometheus metrics (sends, retries, failures by channel) "
            "at http://<metrics-host>:<port>/metrics.",
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option(envvar="RABTA_WORKER_METRICS_HOST", help="Interface for --metrics-port.")
    ] = "127.0.0.1",
) -> None:
    """Deliver the outbox (SMS, WhatsApp, Telegram) with retries, until SIGTERM or Ctrl-C."""
    from api.logs import configure_logging

    settings = settings_or_exit()
    configure_logging(json_lines=settings.is_production)
    if metrics_port is not None:
        # What the worker counts (api/outbox/service.py) lives in this process only: the API's
        # /metrics cannot see it.
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=metrics_host)
    report = asyncio.run(
        _work(
            settings,
            worker_id=worker_id,
            poll_interval=poll_interval,
            batch=batch,
            once=once,
            concurrency=concurrency,
        )
    )
    console.print(
        f"Outbox: {report.sent} sent, {report.retried} to retry, {report.failed} failed, "
        f"{report.suppressed} suppressed (opted out)."
    )


async def _work(settings: Settings, *, once: bool, **options: Any) -> DeliveryReport:
    """Deliver the outbox and, beside it, escalate grievances past their SLA and keep the
    dashboard's traffic counts current."""
    from api.agent.dashboard import roll_up_all, run_roll_ups
    from api.grievances.escalation import escalate_once, run_escalations
    from api.outbox.worker import run_worker
    from api.runtime import Runtime

    runtime = Runtime.create(settings)
    try:
        if once:
            await escalate_once(runtime)
            await roll_up_all(runtime)
            return await run_worker(settings, db=runtime.db, once=True, **options)
        stop = asyncio.Event()
        escalations = asyncio.create_task(run_escalations(runtime, stop=stop))
        roll_ups = asyncio.create_task(run_roll_ups(runtime, stop=stop))
        try:
            # run_worker installs the SIGTERM/SIGINT handlers and returns when they fire.
            return await run_worker(settings, db=runtime.db, **options)
        finally:
            stop.set()
            await escalations
            await roll_ups
    finally:
        await runtime.close()


#: Messages that are done (sent, delivered, failed, …) are counted over this window only: the
#: outbox keeps every message ever sent, and counting them all reads the whole table.
FINAL_WINDOW = dt.timedelta(hours=24)
LIVE = ("pending", "sending")
DONE = ("sent", "delivered", "failed", "undelivered", "suppressed")
#: Statuses whose last error says why the messages wait or did not arrive: a refused send
#: (`failed`) or Twilio's delivery error (`undelivered`: 30003 unreachable handset, 30007
#: carrier filtering, …). A `sending` message's error is an earlier try's.
EXPLAINED = ("pending", "failed", "undelivered")


@outbox_app.command("stats")
def stats() -> None:
    """Messages in the outbox by channel and status.

    Every one waiting or being sent, and those done (sent, failed, …) in the past 24 hours."""
    settings = settings_or_exit()
    rows = asyncio.run(_stats(settings, now=dt.datetime.now(dt.UTC)))
    table = Table("channel", "status", "messages", "oldest", "last error")
    for channel, status, count, oldest, error in rows:
        table.add_row(
            channel,
            status,
            f"{count:,}",
            oldest.isoformat(timespec="seconds"),
            escape(error or "") if status in EXPLAINED else "",
        )
    console.print(table if rows else "The outbox is empty.")
    console.print(
        "pending and sending: all of them; other statuses: messages last tried in the past "
        f"{FINAL_WINDOW.total_seconds() / 3600:.0f} hours."
    )


async def _stats(settings: Settings, *, now: dt.datetime) -> list[tuple]:
    """Per channel and status: how many, the oldest, and the latest error among them (why
    messages wait or failed: `twilio 500 error 20500`, `twilio 401 error 20003`, …). Waiting
    and sending messages are read through their partial index; the others only over
    `FINAL_WINDOW` by (status, next_attempt_at), never the whole outbox."""
    from sqlalchemy import and_, func, or_, select
    from sqlalchemy.orm import aliased

    from api.db import Database
    from api.registry.models import OutboundMessage as M

    latest = aliased(M)
    last_error = (
        select(latest.error)
        .where(latest.channel == M.channel, latest.status == M.status, latest.error.is_not(None))
        .order_by(latest.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    async with Database.opened(settings) as db, db.sessions() as session:
        result = await session.execute(
            select(M.channel, M.status, func.count(), func.min(M.created_at), last_error)
            .where(
                or_(
                    M.status.in_(LIVE),
                    and_(M.status.in_(DONE), M.next_attempt_at >= now - FINAL_WINDOW),
                )
            )
            .group_by(M.channel, M.status)
            .order_by(M.channel, M.status)
        )
        return [tuple(row) for row in result]


@outbox_app.command("tail")
def tail(
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
    lines: Annotated[int, typer.Option("-n", min=0, help="How many recent messages.")] = 10,
) -> None:
    """Show what the console sender wrote to RABTA_CONSOLE_OUTBOX (development)."""
    path = settings_or_exit().console_outbox
    if not path.exists() and not follow:
        console.print(f"{path} does not exist yet: nothing was sent in console mode.")
        return
    seen = 0
    try:
        if path.exists():
            recent = path.read_text(encoding="utf-8").splitlines()
            seen = path.stat().st_size
            for line in recent[-lines:] if lines else []:
                _print_line(line)
        while follow:
            try:
                time.sleep(0.5)
                if not path.exists() or path.stat().st_size <= seen:
                    continue
                with path.open("rb") as handle:
                    handle.seek(seen)
                    chunk = handle.read()
                complete, _, _ = chunk.rpartition(b"\n")
                if not complete:
                    continue
                seen += len(complete) + 1
                for line in complete.decode("utf-8").splitlines():
                    _print_line(line)
            except KeyboardInterrupt:
                break
    except (OSError, UnicodeDecodeError) as exc:
        # RABTA_CONSOLE_OUTBOX set to a folder, a file we may not read, or not the sender's
        # JSON lines: said in one line, like every other `rabta` refusal.
        why = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else exc.strerror or exc
        err.print(f"[red]Cannot read RABTA_CONSOLE_OUTBOX ({escape(str(path))}): {why}[/red]")
        raise typer.Exit(1) from None


def _print_line(line: str) -> None:
    try:
        record = json.loads(line)
    except ValueError:
        return
    if not isinstance(record, dict):
        return  # not a message the console sender wrote
    meta = f"{record.get('channel')} → {record.get('to')} [{record.get('kind')}]"
    if record.get("segments"):
        meta += f" {record['encoding']} x{record['segments']}"
    console.print(f"[dim]{escape(str(record.get('at', '')))}[/dim] [bold]{escape(meta)}[/bold]")
    console.print(f"  {record.get('body', '')}", markup=False)
