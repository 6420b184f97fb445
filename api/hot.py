"""Statements every message runs, at the driver's speed on PostgreSQL.

The hot path's statements are built once with SQLAlchemy (api/conversations/repository.py,
api/registry/repository.py). Run through SQLAlchemy's async layer each costs about 0.2 ms of CPU
on top of the driver's 0.07 ms (docs/performance.md); `rows` runs them on the session's own
asyncpg connection instead, compiled once by SQLAlchemy's asyncpg dialect, whenever that
connection is inside a transaction SQLAlchemy has already begun (its asyncpg adapter begins
lazily, at the first statement, so a message's first statement always goes through SQLAlchemy)
or is in autocommit, where every statement commits by itself. On any other driver (SQLite for
`make run`), and before a session's transaction has begun, it is an ordinary `execute`. Only
for Core statements whose parameters asyncpg takes as they are (strings, numbers, booleans,
timezone-aware datetimes, None). It runs on a session or, for the look-up lanes, on a bare
connection in autocommit (api/db.py `Database.autocommit`), which costs no session at all.

A statement in autocommit that has `ASYNC_COMMIT` among its columns commits without waiting for
PostgreSQL's write-ahead log to reach the disk (asynchronous commit, for its own transaction
only). It is for the look-up lanes' two statements, whose answer is given whether or not their
record outlives a crash of PostgreSQL itself (docs/performance.md, item 47). `rows` refuses to
run such a statement inside a transaction, where it would make everything else in it
asynchronous too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import asyncpg
from sqlalchemy import ColumnElement, Executable, literal_column
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

#: What a hot statement runs on: a message's session, or a look-up lane's connection.
Executor: TypeAlias = AsyncSession | AsyncConnection

#: See the module's docstring. `set_config(…, true)` lasts until the end of the transaction, which
#: for a statement in autocommit is its own: the connection's setting is untouched after it.
_ASYNC_COMMIT_SQL = "set_config('synchronous_commit', 'off', true)"
ASYNC_COMMIT: ColumnElement[str] = literal_column(_ASYNC_COMMIT_SQL).label("async_commit")

#: SQL, parameter order, default values, and whether the statement commits asynchronously.
_Compiled = tuple[str, tuple[str, ...], dict[str, Any], bool]
#: (statement id, dialect) → its SQL, parameter order and default values; the statement itself is
#: kept in the value so that its id is never reused while the entry exists.
_COMPILED: dict[tuple[int, str], tuple[_Compiled, Executable]] = {}
_MAX_CACHED = 256


def _compiled(statement: Executable, dialect: Dialect) -> _Compiled:
    key = (id(statement), dialect.name)
    found = _COMPILED.get(key)
    if found is None:
        compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
        sql = (
            compiled.string,
            tuple(compiled.positiontup or ()),
            dict(compiled.params),
            _ASYNC_COMMIT_SQL in compiled.string,
        )
        if len(_COMPILED) >= _MAX_CACHED:  # meant for statements built once; never grow unbounded
            return sql
        found = _COMPILED[key] = (sql, statement)
    return found[0]


async def rows(
    executor: Executor, statement: Executable, params: Mapping[str, Any]
) -> Sequence[Sequence[Any]]:
    """The rows `statement` returns (none for one that returns nothing), by position."""
    connection = executor if isinstance(executor, AsyncConnection) else await executor.connection()
    if connection.dialect.driver == "asyncpg":
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        autocommit = getattr(raw.dbapi_connection, "autocommit", False)
        sql, names, defaults, asynchronous = _compiled(statement, connection.dialect)
        if asynchronous and not autocommit:
            raise ValueError("a statement that commits asynchronously runs in autocommit only")
        if driver is not None and (driver.is_in_transaction() or autocommit):
            try:
                return await driver.fetch(sql, *[params.get(n, defaults.get(n)) for n in names])
            except (
                asyncpg.PostgresError,
                asyncpg.InterfaceError,
                asyncpg.InternalClientError,
                OSError,
            ) as exc:
                raise await _as_sqlalchemy_error(connection, driver, sql, exc) from exc
    result = await connection.execute(statement, dict(params))
    return result.all() if result.returns_rows else []


async def _as_sqlalchemy_error(
    connection: AsyncConnection, driver: Any, sql: str, exc: Exception
) -> DBAPIError:
    """What SQLAlchemy would have raised: a lost connection (a restart, a failover) is
    invalidated, so the pool replaces it, and comes out as an OperationalError the app answers
    with 503 (api/problems.py); any other database error stays a DBAPIError around the driver's."""
    state = str(getattr(exc, "sqlstate", "") or "")
    lost = (
        driver.is_closed()
        # The socket went away, or the server's "terminating connection" arrived while the
        # protocol was between states (asyncpg then refuses any further operation).
        or isinstance(
            exc, (OSError, asyncpg.ConnectionDoesNotExistError, asyncpg.InternalClientError)
        )
        or state.startswith(("08", "57P"))
    )
    if lost:
        await connection.invalidate(exc)
        return OperationalError(sql, None, exc, connection_invalidated=True)
    return DBAPIError(sql, None, exc)
