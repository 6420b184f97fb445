"""`rabta partner create NAME`: an API key for a partner app, with its own quota."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.markup import escape

from api.cli_support import err, settings_or_exit
from api.db import Database
from api.migrate import upgrade_async
from api.partners import PartnerError, create_partner, validate_quota
from api.settings import Settings

partner_app = typer.Typer(
    help="API keys for partner apps (their own quota instead of the per-IP one).",
    no_args_is_help=True,
)


def _quota(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return validate_quota(value)
    except PartnerError as exc:
        raise typer.BadParameter(str(exc)) from None


@partner_app.command("create")
def create_command(
    name: Annotated[str, typer.Argument(help="The partner's name, unique (e.g. 'Sehat portal').")],
    quota: Annotated[
        str | None,
        typer.Option(
            "--quota",
            callback=_quota,
            help="Requests allowed, e.g. 1000/minute; by default RABTA_LIMIT_PARTNER.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Create a partner and print its API key, once: only its hash is stored."""
    settings = settings_or_exit()
    chosen = quota or settings.limit_partner
    try:
        key = asyncio.run(_create(settings, name, chosen))
    except PartnerError as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from None
    # The key alone on stdout, so `KEY=$(rabta partner create …)` captures just it.
    typer.echo(key)
    err.print(
        f"API key for partner {escape(name.strip())!r}, quota {escape(chosen)}."
        " Send it as the X-API-Key header. [bold]It cannot be shown again[/bold]: store it now;"
        " if it is lost, create a new partner."
    )


async def _create(settings: Settings, name: str, quota: str) -> str:
    await upgrade_async(settings.database_url)
    async with Database.opened(settings) as db, db.transaction() as session:
        return await create_partner(session, name=name, quota=quota)
