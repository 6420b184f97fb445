"""The `rabta` command: serve, migrate, load the registry, and talk to the bot in a terminal."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from api.cli_support import (
    err,
    settings_or_exit,
    unknown_schema,
    unmigrated_schema,
    unreachable_service,
)
from api.settings import get_settings

app = typer.Typer(
    name="rabta",
    help="Rabta: self-service for cash-transfer beneficiaries over SMS, USSD, Telegram, WhatsApp.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")

console = Console()

DEMO_HOUSEHOLDS = 5000


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations (SQLite or PostgreSQL, from DATABASE_URL)."""
    from api.migrate import upgrade

    settings = settings_or_exit()
    upgrade(settings.database_url)
    console.print("[green]Database is up to date.[/green]")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    # Bounded here: uvicorn would bind 99999 modulo 65536 and still print 99999.
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    demo: Annotated[
        bool, typer.Option(help="Seed a synthetic registry if empty and print what to try.")
    ] = False,
) -> None:
    """Migrate, then serve `api.main:app` with uvicorn."""
    import uvicorn

    from api.logs import configure_logging, logging_config
    from api.migrate import upgrade

    settings = settings_or_exit()
    configure_logging(json_lines=settings.is_production)
    upgrade(settings.database_url)
    if demo:
        asyncio.run(_prepare_demo(host, port))
    shared_metrics = _shared_metrics_folder(workers)
    try:
        uvicorn.run(
            "api.main:app",
            host=host,
            port=port,
            workers=workers,
            # Applied again in each worker process, which would otherwise log nothing below WARNING
            # and nothing as JSON.
            log_config=logging_config(json_lines=settings.is_production),
            proxy_headers=True,
            server_header=False,
        )
    finally:
        if shared_metrics is not None:
            shared_metrics.cleanup()


def _shared_metrics_folder(workers: int) -> tempfile.TemporaryDirectory[str] | None:
    """With several workers and no PROMETHEUS_MULTIPROC_DIR, a fresh folder they all share, so
    that `/metrics` adds every worker up. Without one each scrape reads the one worker that
    happens to answer it, and counters jump between the workers' values, which Prometheus
    takes for resets."""
    if workers < 2 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    # In memory where the system has it (as compose mounts a tmpfs): every count is a write to
    # a mapped file, which on disk the kernel would flush under the requests' feet.
    shm = Path("/dev/shm")  # noqa: S108 - a fresh 0700 folder inside it, made by tempfile
    memory = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    folder = tempfile.TemporaryDirectory(prefix="rabta-metrics-", dir=memory)
    # Read by prometheus-client in each worker process, which inherits the environment.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder.name
    return folder


async def _prepare_demo(host: str, port: int) -> None:
    from api.agent import ensure_demo_agents
    from api.agent.service import DEMO_PASSWORD
    from api.db import Database
    from api.registry.seed import registry_is_empty, sample_cnics, seed_registry

    settings = get_settings()
    async with Database.opened(settings) as db:
        if await registry_is_empty(db):
            console.print(f"Seeding a synthetic registry of {DEMO_HOUSEHOLDS:,} households…")
            await seed_registry(db, households=DEMO_HOUSEHOLDS, seed=1, cutoff=settings.pmt_cutoff)
        samples = await sample_cnics(db, limit=4, cutoff=settings.pmt_cutoff)
        await ensure_demo_agents(db, settings=settings)
    base = f"http://{host}:{port}"
    console.rule("[bold]Rabta is starting")
    console.print(f"  API docs          {base}/docs")
    console.print(f"  Eligibility       {base}/v1/eligibility/<CNIC>")
    console.print(f"  SMS/WhatsApp      POST {base}/webhooks/twilio/messaging")
    console.print(f"  USSD              POST {base}/webhooks/ussd")
    console.print(
        f"  Agent console     {base}/agent   logins agent / supervisor / admin, "
        f"password {DEMO_PASSWORD}",
        soft_wrap=True,
    )
    console.print(f"  Health            {base}/healthz  {base}/readyz")
    console.print("  Sample CNICs:")
    for sample in samples:
        phone = sample.mobile or "no registered mobile"
        console.print(f"    {sample.cnic}  {sample.status:<13} registered mobile: {phone}")
    if samples:
        first = samples[0].cnic
        console.print("  Try it:")
        phone = samples[0].mobile or "+923001234567"
        console.print(
            f"    curl -s {base}/webhooks/twilio/messaging -d MessageSid=SMdemo1 "
            f"--data-urlencode From={phone} -d Body={first}",
            soft_wrap=True,
        )
        console.print(f"    .venv/bin/rabta chat --channel sms --phone {phone}", soft_wrap=True)
    console.rule()


@app.command()
def chat(
    channel: Annotated[str, typer.Option(help="sms, whatsapp, ussd or telegram")] = "sms",
    phone: Annotated[str, typer.Option(help="The phone you are texting from.")] = "+923001234567",
) -> None:
    """Talk to the bot in a terminal, through the same webhook a real gateway calls."""
    from api.chat import run_chat

    if channel not in ("sms", "whatsapp", "ussd", "telegram"):
        err.print(f"[red]Unknown channel {channel!r}[/red]: use sms, whatsapp, ussd or telegram.")
        raise typer.Exit(2)
    settings_or_exit()
    logging.disable(logging.INFO)
    sys.exit(asyncio.run(run_chat(channel=channel, phone=phone, console=console)))


def _mount_i18n() -> None:
    from bot.i18n_report import i18n_app

    app.add_typer(i18n_app, name="i18n")


def _mount_registry() -> None:
    from api.registry.cli import registry_app

    app.add_typer(registry_app, name="registry")


def _mount_partner() -> None:
    from api.partners_cli import partner_app

    app.add_typer(partner_app, name="partner")


def _mount_telegram() -> None:
    from api.telegram_cli import telegram_app

    app.add_typer(telegram_app, name="telegram")


def _mount_outbox() -> None:
    from api.outbox.cli import outbox_app, worker

    app.command("worker")(worker)
    app.add_typer(outbox_app, name="outbox")


def _mount_held() -> None:
    from api.held_cli import held_app

    app.add_typer(held_app, name="held")


def _mount_agent() -> None:
    from api.agent.cli import agent_app

    app.add_typer(agent_app, name="agent")


_mount_registry()
_mount_partner()
_mount_agent()
_mount_outbox()
_mount_held()
_mount_telegram()
_mount_i18n()


def main() -> None:
    try:
        app()
    except Exception as exc:
        # A database or Redis that is down or refuses us is the operator's to fix: say which and
        # why in one line, not in a traceback.
        outage = unreachable_service(exc) or unknown_schema(exc) or unmigrated_schema(exc)
        if outage is None:
            raise
        err.print(f"[red]{escape(outage)}[/red]", soft_wrap=True)
        sys.exit(1)
