"""Database engines and sessions: Rabta's tables, and registry reads (maybe on a replica)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, event, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from api.settings import Settings

#: Seconds to open a PostgreSQL connection, and to wait for a free one in the pool.
CONNECT_TIMEOUT = 10.0
POOL_TIMEOUT = 10.0


def create_engine(url: str) -> AsyncEngine:
    """An async engine for `url`; SQLite gets its folder created, WAL and foreign keys."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    # No pre-ping: it costs three round trips per checkout (BEGIN, ping, ROLLBACK), a third
    # of an SMS's. A connection the server dropped (a restart) fails its request once instead,
    # which answers 503 for Twilio to retry; SQLAlchemy then discards every connection made
    # before the failure, so one such request refreshes the whole pool. `pool_recycle` keeps
    # connections younger than a proxy's or firewall's idle timeout.
    # Bounded waits: asyncpg waits 60 s for a new connection and the pool 30 s for a free one,
    # which in a partition (a server that accepts and says nothing) kept requests hanging long
    # past any gateway's patience; past these they fail as unavailable (503, or held).
    return create_async_engine(
        url,
        pool_size=10,
        max_overflow=20,
        pool_recycle=1800,
        pool_timeout=POOL_TIMEOUT,
        connect_args={"timeout": CONNECT_TIMEOUT},
    )


def _autocommit(engine: AsyncEngine) -> AsyncEngine:
    """The engine's connections in autocommit: each statement commits by itself."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def dialect_of(executor: AsyncSession | AsyncConnection) -> str:
    """The SQL dialect a session or connection speaks (PostgreSQL for a session not bound)."""
    if isinstance(executor, AsyncConnection):
        return executor.dialect.name
    return executor.bind.dialect.name if executor.bind else "postgresql"


def insert_for(dialect: str, table: Any) -> Any:
    """The dialect's own INSERT into `table`, which knows ON CONFLICT (PostgreSQL's, else
    SQLite's, for `make run`)."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def utc(moment: dt.datetime) -> dt.datetime:
    """A stored moment as an aware UTC datetime: SQLite hands back naive ones for timezone-aware
    columns, and everything Rabta stores is UTC; an aware one is converted."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment if moment.tzinfo is dt.UTC else moment.astimezone(dt.UTC)


def is_postgres(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql"


@dataclass
class Database:
    """The primary engine and the registry engine (the same one unless a replica is set)."""

    engine: AsyncEngine
    registry_engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    registry_sessions: async_sessionmaker[AsyncSession]
    #: The primary's engine in autocommit (`autocommit()`'s connections): each statement
    #: commits by itself, with no BEGIN or COMMIT round trip (a look-up answered first and
    #: recorded with its reply after).
    autocommit_engine: AsyncEngine
    #: The registry's engine in autocommit (`registry_reads()`'s connections).
    registry_autocommit_engine: AsyncEngine

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        engine = create_engine(settings.database_url)
        registry_engine = (
            create_engine(settings.registry_url)
            if settings.registry_url != settings.database_url
            else engine
        )
        # Registry reads in autocommit: a read-only request makes one round trip per query
        # instead of BEGIN, query, ROLLBACK. PostgreSQL's READ COMMITTED already gives each
        # statement its own snapshot, so nothing a transaction would add is lost.
        autocommit_engine = _autocommit(engine)
        registry_autocommit_engine = (
            autocommit_engine if registry_engine is engine else _autocommit(registry_engine)
        )
        return cls(
            engine=engine,
            registry_engine=registry_engine,
            sessions=async_sessionmaker(engine, expire_on_commit=False),
            registry_sessions=async_sessionmaker(
                registry_autocommit_engine, expire_on_commit=False
            ),
            autocommit_engine=autocommit_engine,
            registry_autocommit_engine=registry_autocommit_engine,
        )

    @property
    def registry_is_primary(self) -> bool:
        """True when registry reads go to the primary (no replica): a statement on a primary
        session can read the registry too."""
        return self.registry_engine is self.engine

    @classmethod
    @asynccontextmanager
    async def opened(cls, settings: Settings) -> AsyncIterator[Database]:
        """The database for one command or job: opened from the settings, disposed after."""
        db = cls.from_settings(settings)
        try:
            yield db
        finally:
            await db.dispose()

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A connection of the primary in autocommit, for the look-up lanes, whose statements
        run on the driver (api/hot.py) and each commit by itself. No ORM session around it: a
        session's creation, first checkout and close cost about 9 % of an SMS look-up's CPU
        (docs/performance.md). Code that needs a session gets one bound to this connection
        (api/bot_services.py)."""
        async with self.autocommit_engine.connect() as connection:
            yield connection

    @asynccontextmanager
    async def registry_reads(self) -> AsyncIterator[AsyncConnection]:
        """A bare connection to the registry (its replica when there is one) in autocommit,
        for reads on the driver with no session around them (`GET /v1/eligibility`)."""
        async with self.registry_autocommit_engine.connect() as connection:
            yield connection

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work commits at the end of the block, or rolls back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.registry_engine is not self.engine:
            await self.registry_engine.dispose()


Claimed = TypeVar("Claimed")


async def claim_rows(
    db: Database,
    model: type[Claimed],
    *,
    pick: Select[Any],
    due: ColumnElement[bool],
    values: dict[str, Any],
) -> list[Claimed]:
    """Claim rows of `model` for one worker: `pick` selects their ids (ordered and limited),
    `due` says which rows may be claimed and `values` marks them claimed. On PostgreSQL the
    picked rows are locked with `SKIP LOCKED`, so workers take disjoint rows without waiting on
    each other, until this short transaction commits the marks; on SQLite (one process) one
    `UPDATE` with the pick as its subquery is atomic under the database write lock."""
    key = model.id  # type: ignore[attr-defined]
    async with db.transaction() as session:
        if is_postgres(db.engine):
            # Rows another worker is claiming are skipped, not waited for.
            ids = list((await session.execute(pick.with_for_update(skip_locked=True))).scalars())
            if not ids:
                return []
            target = key.in_(ids)
        else:
            target = key.in_(pick.scalar_subquery())
        result = await session.execute(
            update(model)
            .where(target, due)
            .values(**values)
            .returning(model)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        return list(result.scalars())
