"""`rabta held stats|retry`: the messages held in a surge (api/held.py), for an operator."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console

from api.cli_support import settings_or_exit
from api.db import Database

console = Console()

held_app = typer.Typer(
    help="SMS and WhatsApp messages held in a surge, to be answered when a worker has room.",
    no_args_is_help=True,
)

T = TypeVar("T")


def _on_database(work: Callable[[Database], Awaitable[T]]) -> T:
    settings = settings_or_exit()

    async def run() -> T:
        async with Database.opened(settings) as db:
            return await work(db)

    return asyncio.run(run())


def _kept_in_redis() -> tuple[int, int]:
    """Messages kept in Redis while the database was away, not yet moved (the release before
    sealing's list included), and those set aside as not opening under this secret key."""
    from api.held import EARLIER_SPILL_KEY, SPILL_KEY, UNOPENED_KEY
    from api.redis import connect_redis

    settings = settings_or_exit()

    async def run() -> tuple[int, int]:
        redis = connect_redis(settings)
        try:
            async with redis.pipeline(transaction=False) as pipe:
                for key in (SPILL_KEY, EARLIER_SPILL_KEY, UNOPENED_KEY):
                    pipe.llen(key)
                sealed, earlier, unopened = (int(n) for n in await pipe.execute())
            return sealed + earlier, unopened
        finally:
            await redis.aclose()

    return asyncio.run(run())


@held_app.command("stats")
def stats() -> None:
    """How many messages are held, in which state, and the oldest's age."""
    from api.held import MAX_ATTEMPTS, backlog

    # Redis first: while the database is away, what Redis keeps is all there is to count.
    kept, unopened = _kept_in_redis()
    if kept:
        console.print(
            f"kept in Redis while the database was away: {kept:,} "
            "(an API worker moves them within seconds of its coming back)"
        )
    if unopened:
        console.print(
            f"[red]kept in Redis, sealed under another secret key, set aside: {unopened:,}[/red] "
            "(start one API replica with the earlier RABTA_SECRET_KEY: "
            "it takes them in as it starts)"
        )
    found = _on_database(backlog)
    if not (found.waiting or found.retrying or found.given_up):
        if not (kept or unopened):
            console.print("Nothing is held: every message has been answered.")
        return
    age = dt.datetime.now(dt.UTC) - found.oldest if found.oldest else dt.timedelta()
    console.print(f"waiting for a worker with room: {found.waiting:,}")
    console.print(f"tried and to be tried again:    {found.retrying:,}")
    console.print(f"given up after {MAX_ATTEMPTS} tries:        {found.given_up:,}")
    console.print(f"oldest held {int(age.total_seconds()):,} s ago")
    if found.given_up:
        console.print(
            "[yellow]Given-up messages are kept; see the API's log for why they failed, "
            "mend it, then run `rabta held retry`.[/yellow]"
        )


@held_app.command("retry")
def retry() -> None:
    """Give the given-up messages fresh tries (after mending what failed them)."""
    from api.held import retry_given_up

    count = _on_database(retry_given_up)
    console.print(f"{count:,} given-up messages will be tried again by the API workers.")
