"""What every `rabta` command shares: the error console and refusing a bad configuration."""

from __future__ import annotations

import os
import re
import traceback

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from api.settings import Settings, get_settings

#: Errors go to stderr, so a command's stdout stays what scripts capture (an API key, a count).
err = Console(stderr=True)


def settings_or_exit() -> Settings:
    """The settings, or exit 2 with what was refused (a bad RABTA_* value, production without
    its secrets, a URL or a rate limit Rabta cannot use) instead of a traceback."""
    try:
        settings = get_settings()
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        err.print(f"[red]Configuration refused:[/red] {escape(refusal(exc))}")
        raise typer.Exit(2) from None
    if problem := unusable(settings):
        err.print(f"[red]Configuration refused:[/red] {escape(problem)}", soft_wrap=True)
        raise typer.Exit(2)
    return settings


#: The SQLAlchemy drivers Rabta ships (`postgresql://` and `sqlite://` are read as these).
USABLE_DATABASES = ("postgresql+asyncpg", "sqlite+aiosqlite")


def unusable(settings: Settings) -> str | None:
    """What in `settings` no command could use, said without its value where that may hold a
    password, or None: a URL that is not one (SQLAlchemy's or redis-py's traceback otherwise,
    or a module that is not installed), a database Rabta has no driver for. (A rate limit that
    would not apply as written is refused by Settings itself, `one_rate_limit`.)"""
    from redis.asyncio.connection import parse_url
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    for variable, url in (
        ("DATABASE_URL", settings.database_url),
        ("REGISTRY_DATABASE_URL", settings.registry_database_url),
    ):
        if not url:
            continue
        try:
            driver = make_url(url).drivername
        except ArgumentError:
            return (
                f"{variable}: not a database URL; write it like "
                "postgresql+asyncpg://user:password@host:5432/rabta or "
                "sqlite+aiosqlite:///var/rabta.db"
            )
        if driver not in USABLE_DATABASES:
            return (
                f"{variable}: Rabta uses PostgreSQL (postgresql+asyncpg://…) or SQLite "
                f"(sqlite+aiosqlite:///…), not {driver}"
            )
    if settings.redis_url:
        try:
            parse_url(settings.redis_url)
        except ValueError:
            return (
                "REDIS_URL: not a Redis URL; write it like redis://host:6379/0 "
                "(rediss:// with TLS, unix:///path/to/redis.sock)"
            )
    return None


def refusal(exc: ValueError) -> str:
    """What was refused, without the values: pydantic's own message repeats the whole input,
    database URLs with their passwords and tokens included, into the operator's terminal."""
    if not isinstance(exc, ValidationError):
        return str(exc)
    return "; ".join(
        (f"{'.'.join(map(str, e['loc']))}: " if e["loc"] else "") + e["msg"]
        for e in exc.errors(include_url=False, include_input=False)
    )


#: Where a failure to reach a service comes from, by the modules its traceback passes through.
_DATABASE_MODULES = ("/asyncpg/", "/aiosqlite/", "/sqlalchemy/", "/alembic/", "/api/db.py")
_REDIS_MODULES = ("/redis/",)


def unreachable_service(exc: BaseException) -> str | None:
    """A one-line account of a database or Redis that is down, missing or refusing us (what the
    operator can fix), or None for any other failure (a fault of Rabta's, worth its traceback).

    URLs are shown without their passwords."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import ResponseError as RedisResponseError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from sqlalchemy.exc import DBAPIError, OperationalError

    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return _outage("Redis", "REDIS_URL", _first_line(exc))
    if isinstance(exc, RedisResponseError) and "DB index" in str(exc):
        # REDIS_URL names a database number the server does not have (16 by default).
        return _outage("Redis", "REDIS_URL", _first_line(exc))
    if isinstance(exc, OperationalError | DBAPIError) and _is_connection_error(exc):
        return _outage("the database", "DATABASE_URL", _first_line(exc.orig or exc))
    if isinstance(exc, OSError):
        modules = " ".join(frame.filename for frame in traceback.extract_tb(exc.__traceback__))
        if any(name in modules for name in _REDIS_MODULES):
            return _outage("Redis", "REDIS_URL", _first_line(exc))
        if any(name in modules for name in _DATABASE_MODULES):
            return _outage("the database", "DATABASE_URL", _first_line(exc))
    return None


def _is_connection_error(exc: BaseException) -> bool:
    """A driver error about reaching the database (down, missing, refusing the role or
    password, shutting down, a connection lost), not about a statement, which is a fault of
    Rabta's."""
    import sqlite3

    import asyncpg
    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    refusals = (
        OSError,
        asyncpg.PostgresConnectionError,
        asyncpg.InvalidCatalogNameError,
        asyncpg.InvalidAuthorizationSpecificationError,
        asyncpg.OperatorInterventionError,
        asyncpg.TooManyConnectionsError,
    )
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, refusals):
            return True
        if isinstance(cause, sqlite3.OperationalError) and "unable to open" in str(cause):
            return True
        cause = getattr(cause, "orig", None) or cause.__cause__
    return False


def _outage(service: str, variable: str, detail: str) -> str:
    try:
        settings = get_settings()
        url = settings.database_url if variable == "DATABASE_URL" else settings.redis_url
    except ValueError:
        url = os.environ.get(variable)
    where = f"{variable}={_without_password(url)}" if url else f"{variable} is not set"
    return f"Cannot use {service} ({where}): {detail}"


def _without_password(url: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a URL)"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    # asyncpg's errors come through SQLAlchemy as "<class 'asyncpg....Error'>: message".
    text = re.sub(r"^<class '[\w.]+'>: ", "", text)
    return text.splitlines()[0] if text else type(exc).__name__


def unknown_schema(exc: BaseException) -> str | None:
    """A database whose schema this Rabta cannot migrate (a revision it does not know: the
    database was migrated by a newer Rabta, or belongs to something else), in one line."""
    from alembic.util.exc import CommandError

    if not isinstance(exc, CommandError):
        return None
    return _outage(
        "the database",
        "DATABASE_URL",
        f"{_first_line(exc)}: was it migrated by a newer Rabta? Run that version, or point "
        "DATABASE_URL at Rabta's own database",
    )


def unmigrated_schema(exc: BaseException) -> str | None:
    """A database without the table a command reads (never migrated: a fresh database, a
    worker started before any `rabta serve` or `rabta db upgrade`, or DATABASE_URL pointing at
    another database), in one line."""
    import sqlite3

    from sqlalchemy.exc import DBAPIError

    if not isinstance(exc, DBAPIError):
        return None
    cause = exc.orig
    # PostgreSQL's undefined_table, as asyncpg's adapted error carries it; SQLite's own words.
    missing = getattr(cause, "sqlstate", None) == "42P01" or (
        isinstance(cause, sqlite3.OperationalError) and str(cause).startswith("no such table")
    )
    if not missing:
        return None
    return _outage(
        "the database",
        "DATABASE_URL",
        f"{_first_line(cause or exc)}: is it migrated? Run `rabta db upgrade`, or point "
        "DATABASE_URL at Rabta's own database",
    )
