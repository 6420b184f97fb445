"""Apply Alembic migrations programmatically (`rabta db upgrade`, `rabta serve`, tests)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from api.db import create_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    return config


async def upgrade_async(url: str, revision: str = "head") -> None:
    """Upgrade the database at `url` to `revision` (callable from a running event loop)."""
    engine: AsyncEngine = create_engine(url)
    try:
        async with engine.begin() as connection:
            config = alembic_config(url)

            def _upgrade(sync_connection: Connection) -> None:
                config.attributes["connection"] = sync_connection
                command.upgrade(config, revision)

            await connection.run_sync(_upgrade)
    finally:
        await engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the database at `url` to `revision`."""
    asyncio.run(upgrade_async(url, revision))
