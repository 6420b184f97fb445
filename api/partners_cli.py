"""`rabta partner create NAME`: an API key for a partner app, with its own quota; `rabta partner
revoke NAME-OR-ID` takes it back."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.markup import escape
from sqlalchemy import select

from api.cli_support import err, settings_or_exit
from api.db import Database
from api.migrate import upgrade_async
from api.partners import PartnerError, create_partner, validate_quota
from api.ratelimit.http import PARTNER_CACHE_SECONDS
from api.registry.models import Partner
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


@partner_app.command(
    "revoke",
    help=(
        "Deactivate a partner: every API worker refuses its key within "
        f"{PARTNER_CACHE_SECONDS:.0f} s, the time a worker trusts a key it has checked (the "
        "row stays, for the record)."
    ),
)
def revoke_command(
    partner: Annotated[str, typer.Argument(help="The partner's name, or its id.")],
) -> None:
    """Deactivate a partner (the help text is above: it names the cache's lifetime)."""
    settings = settings_or_exit()
    name = asyncio.run(_revoke(settings, partner.strip()))
    if name is None:
        err.print(f"[red]No partner is named or numbered {escape(partner.strip())!r}.[/red]")
        raise typer.Exit(1)
    typer.echo(
        f"Partner {name!r} revoked: every API worker refuses its key within "
        f"{PARTNER_CACHE_SECONDS:.0f} s (the time a worker trusts a key it has checked)."
    )


#: The largest id a partner can have (`partners.id` is a 32-bit integer in PostgreSQL).
_MAX_PARTNER_ID = 2**31 - 1


def _partner_number(text: str) -> int | None:
    """`text` as a partner id, or None when no partner can be so numbered (not ASCII digits,
    or past what the column holds, which the database would refuse with an error)."""
    if not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if 0 < number <= _MAX_PARTNER_ID else None


async def _revoke(settings: Settings, name_or_id: str) -> str | None:
    """Deactivate the partner so named (else, for digits, so numbered); its name, or None."""
    await upgrade_async(settings.database_url)
    async with Database.opened(settings) as db, db.transaction() as session:
        partner = await session.scalar(select(Partner).where(Partner.name == name_or_id))
        if partner is None and (number := _partner_number(name_or_id)) is not None:
            partner = await session.get(Partner, number)
        if partner is None:
            return None
        partner.active = False
        return partner.name
