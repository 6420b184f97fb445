"""Migrations build exactly the models' schema, on SQLite and on PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from api.db import create_engine
from api.migrate import upgrade_async
from api.registry.models import Base


async def _diff(url: str) -> list:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
    finally:
        await engine.dispose()


async def test_fresh_sqlite_database_matches_the_models(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    await upgrade_async(url)
    await upgrade_async(url)  # idempotent
    assert await _diff(url) == []


async def test_test_database_matches_the_models(migrated):
    assert await _diff(migrated) == []
