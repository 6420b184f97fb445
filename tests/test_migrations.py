"""Migrations build exactly the models' schema, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from asyncio.subprocess import PIPE, STDOUT
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

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


@pytest.fixture
async def fresh_postgres(database_url: str) -> AsyncIterator[str]:
    """An empty PostgreSQL database beside the test one, dropped after the test."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        pytest.skip("the migration lock is PostgreSQL's (SQLite serialises writers itself)")
    name = f"{url.database}_fresh_{secrets.token_hex(4)}"
    admin = create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        await admin.dispose()


async def test_replicas_migrating_a_fresh_database_at_once_both_start(fresh_postgres):
    """Each API replica runs the migrations before serving: on a first deploy they start
    together on an empty database, and neither may fail (alembic_version's unique key broke
    one of them before the advisory lock)."""
    rabta = Path(sys.executable).with_name("rabta")
    env = {**os.environ, "DATABASE_URL": fresh_postgres}
    runs = [
        await asyncio.create_subprocess_exec(
            str(rabta), "db", "upgrade", env=env, stdout=PIPE, stderr=STDOUT
        )
        for _ in range(3)
    ]
    outputs = [(await run.communicate())[0].decode() for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], "\n".join(outputs)
    assert await _diff(fresh_postgres) == []
