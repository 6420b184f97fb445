"""Apply Alembic migrations programmatically (`rabta db upgrade`, `rabta serve`, tests)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.db import create_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

#: The PostgreSQL advisory lock every `rabta serve` and `rabta db upgrade` migrates under
#: ("rabta" in ASCII): a fixed key, so all processes on one database contend for the same lock.
MIGRATION_LOCK_KEY = 0x7261627461
#: How often a replica waiting for another's migrations asks for the lock again.
LOCK_POLL_SECONDS = 0.2


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    return config


@contextlib.asynccontextmanager
async def migration_lock(connection: AsyncConnection) -> AsyncIterator[None]:
    """Hold the migration lock on `connection` (PostgreSQL) while the body runs.

    Every API replica migrates before serving; without the lock two replicas starting on a fresh
    database both create the schema and one dies on `alembic_version`'s unique key. With it the
    second waits, then finds the database at head. A session lock rather than a transaction's,
    so a migration that commits part-way (an index built concurrently) still holds it. SQLite
    serialises writers itself and has no such lock.

    The others poll for it (`LOCK_POLL_SECONDS`) with no transaction open between tries rather
    than block in `pg_advisory_lock`: a statement blocked there holds a snapshot, an index built
    concurrently waits for every older snapshot to go, and the two deadlocked (PostgreSQL then
    killed the waiting replica's upgrade).
    """
    if connection.dialect.name != "postgresql":
        yield
        return
    try_lock = f"SELECT pg_try_advisory_lock({MIGRATION_LOCK_KEY})"
    while not (await connection.exec_driver_sql(try_lock)).scalar():
        await connection.rollback()
        await asyncio.sleep(LOCK_POLL_SECONDS)
    try:
        yield
    finally:
        # A failed migration leaves its transaction aborted: end it, or the unlock is refused.
        await connection.rollback()
        await connection.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")


async def upgrade_async(url: str, revision: str = "head") -> None:
    """Upgrade the database at `url` to `revision` (callable from a running event loop)."""
    engine: AsyncEngine = create_engine(url)
    try:
        async with engine.connect() as connection, migration_lock(connection):
            config = alembic_config(url)

            def _upgrade(sync_connection: Connection) -> None:
                config.attributes["connection"] = sync_connection
                command.upgrade(config, revision)

            await connection.run_sync(_upgrade)
            await connection.commit()
    finally:
        await engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the database at `url` to `revision`."""
    asyncio.run(upgrade_async(url, revision))
