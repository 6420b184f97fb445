"""`rabta agent create USERNAME --role agent|supervisor|admin`: staff accounts for the console.

The password is read from stdin: typed twice (not echoed) at a terminal, or the first line of a
pipe (`printf '%s\n' "$PASSWORD" | rabta agent create amina --role agent`). It is never taken
as an argument, where it would land in the shell history and the process list.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from api.agent import service
from api.agent.passwords import MIN_PASSWORD_LENGTH, WeakPassword
from api.agent.schemas import Role
from api.agent.sessions import SessionStore, SessionsUnavailable
from api.cli_support import err, settings_or_exit, unreachable_service
from api.db import Database
from api.migrate import upgrade_async
from api.redis import connect_redis
from api.settings import Settings

agent_app = typer.Typer(help="Staff accounts for the agent console.", no_args_is_help=True)

console = Console()


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass(f"Password (at least {MIN_PASSWORD_LENGTH} characters): ")
        second = getpass.getpass("Password again: ")
        if first != second:
            err.print("[red]The two passwords differ.[/red]")
            raise typer.Exit(1)
        return first
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


@agent_app.command("create")
def create_command(
    username: Annotated[str, typer.Argument(help="Sign-in name, e.g. amina.khan")],
    role: Annotated[Role, typer.Option("--role", help="What the account may do.")] = Role.AGENT,
) -> None:
    """Create a console account; the password is read from stdin."""
    settings = settings_or_exit()
    password = _read_password()
    try:
        name = asyncio.run(_create(settings, username, password, role))
    except WeakPassword as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from None
    except service.InvalidUsername:
        err.print(
            "[red]A username is 2–64 lower-case letters, digits, dots, dashes or underscores.[/red]"
        )
        raise typer.Exit(1) from None
    except service.UsernameTaken:
        err.print(f"[red]The username {escape(username)!r} is taken.[/red]")
        raise typer.Exit(1) from None
    console.print(f"Created {escape(name)} ({role.value}). Sign in at /agent/login.")


@agent_app.command("password")
def password_command(
    username: Annotated[str, typer.Argument(help="The account whose password to replace.")],
) -> None:
    """Replace an account's password (read from stdin), lift any lock and end its sessions."""
    settings = settings_or_exit()
    password = _read_password()
    try:
        ended = asyncio.run(_set_password(settings, username, password))
    except WeakPassword as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from None
    except service.UnknownAccount:
        err.print(f"[red]No account is called {escape(username)!r}.[/red]")
        raise typer.Exit(1) from None
    except SessionsUnavailable as exc:
        _sessions_left_open(
            f"The password of {username} is replaced, but its sessions could not be ended", exc
        )
    if ended:
        console.print(f"Password of {escape(username)} replaced; its sessions have ended.")
        return
    console.print(
        f"Password of {escape(username)} replaced. Without REDIS_URL the server keeps its "
        "sessions in its own process, so any it has open could not be ended from here: they "
        "end after an hour unused (twelve at most) or when the server restarts."
    )


@agent_app.command("deactivate")
def deactivate_command(
    username: Annotated[str, typer.Argument(help="The account to switch off.")],
) -> None:
    """Switch an account off and end its sessions (its history stays in the audit log)."""
    settings = settings_or_exit()
    try:
        asyncio.run(_deactivate(settings, username))
    except service.UnknownAccount:
        err.print(f"[red]No account is called {escape(username)!r}.[/red]")
        raise typer.Exit(1) from None
    except SessionsUnavailable as exc:
        # The account is off in the database, which every console request reads: what is
        # left in Redis opens nothing, but the operator is told it is there.
        _sessions_left_open(
            f"{username} can no longer sign in (an open session is refused at its next page), "
            "but its sessions could not be deleted",
            exc,
        )
    console.print(f"{escape(username)} can no longer sign in.")


def _sessions_left_open(done: str, exc: SessionsUnavailable) -> NoReturn:
    """Exit 1 saying what was done in the database and that Redis, down, kept the account's
    sessions: one line, not the traceback of the Redis client."""
    cause = exc.__cause__ or exc
    outage = unreachable_service(cause) or f"Cannot use Redis: {type(cause).__name__}"
    err.print(
        f"[red]{escape(done)} ({escape(outage)}); run it again once Redis answers.[/red]",
        soft_wrap=True,
    )
    raise typer.Exit(1) from None


async def _create(settings: Settings, username: str, password: str, role: Role) -> str:
    await upgrade_async(settings.database_url)
    async with Database.opened(settings) as db, db.transaction() as session:
        agent = await service.create_agent(session, username=username, password=password, role=role)
        return agent.username


async def _end_sessions(settings: Settings, agent_id: int) -> bool:
    """End the account's sessions; False without REDIS_URL, where the sessions live in the
    server's own in-process substitute, out of this command's reach."""
    if not settings.redis_url:
        return False
    redis = connect_redis(settings)
    try:
        await SessionStore(redis, settings).end_all(agent_id=agent_id)
    finally:
        await redis.aclose()
    return True


async def _set_password(settings: Settings, username: str, password: str) -> bool:
    """Replace the password; True when the account's sessions were ended too."""
    async with Database.opened(settings) as db, db.transaction() as session:
        agent = await service.set_password(session, username=username, password=password)
        agent_id = agent.id
    return await _end_sessions(settings, agent_id)


async def _deactivate(settings: Settings, username: str) -> None:
    async with Database.opened(settings) as db, db.transaction() as session:
        agent = await service.set_active(session, username=username, active=False)
        agent_id = agent.id
    await _end_sessions(settings, agent_id)
