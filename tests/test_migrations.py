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
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from api.db import create_engine
from api.migrate import MIGRATION_LOCK_KEY, alembic_config, upgrade_async
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


#: Indexes on an expression, which SQLite's reflection (and so `_diff` there) skips.
EXPRESSION_INDEXES = ("ix_grievances_district_due", "ix_grievances_worked_district")


@pytest.mark.filterwarnings("ignore:.*expression-based index")
async def test_fresh_sqlite_database_matches_the_models(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    await upgrade_async(url)
    await upgrade_async(url)  # idempotent
    assert await _diff(url) == []
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
            )
            made = {name: sql for name, sql in rows}
    finally:
        await engine.dispose()
    for name in EXPRESSION_INDEXES:
        assert "lower(district)" in made[name]


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
    await _replicas_upgrade(fresh_postgres)
    assert await _diff(fresh_postgres) == []


async def _replicas_upgrade(url: str, replicas: int = 3) -> None:
    """`rabta db upgrade` in `replicas` processes at once, as replicas starting together run it;
    each must succeed. The migration lock is held until every one of them has asked for it, so
    that one migrates while all the others wait, however long each takes to start."""
    rabta = Path(sys.executable).with_name("rabta")
    env = {**os.environ, "DATABASE_URL": url}
    engine = create_engine(url)
    try:
        async with engine.connect() as holder:
            await holder.execute(text(f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
            await holder.commit()
            runs = [
                await asyncio.create_subprocess_exec(
                    str(rabta), "db", "upgrade", env=env, stdout=PIPE, stderr=STDOUT
                )
                for _ in range(replicas)
            ]
            for _ in range(600):
                asking = await holder.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                        "current_database() AND pid <> pg_backend_pid() AND query LIKE "
                        f"'%advisory_lock({MIGRATION_LOCK_KEY})%'"
                    )
                )
                await holder.rollback()
                if asking >= replicas or any(run.returncode is not None for run in runs):
                    break
                await asyncio.sleep(0.05)
            await holder.execute(text(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
            await holder.commit()
            outputs = [(await run.communicate())[0].decode() for run in runs]
    finally:
        await engine.dispose()
    assert [run.returncode for run in runs] == [0] * replicas, "\n".join(outputs)


#: The indexes revision 0008 builds, each on a table that is large in a national deployment.
ONLINE_INDEXES = {
    "ix_grievances_worked_due": "grievances",
    "ix_grievances_worked_assignee": "grievances",
    "ix_contacts_verified_cnic": "contacts",
    "ix_audit_log_actor_at": "audit_log",
    "ix_outbound_messages_errors": "outbound_messages",
    "ix_grievance_events_closing_at": "grievance_events",
    "ix_grievances_worked_district": "grievances",
    "ix_grievances_district_due": "grievances",
}

_AUDIT_ROW = (
    "INSERT INTO audit_log (at, actor, action, record_type, record_id) "
    "VALUES (now(), :actor, 'lookup', 'person', '3520112345671')"
)


async def _populate(url: str) -> None:
    """A database at 0007 with a row in each table 0008 indexes (a deployed one, not a new one)."""
    await upgrade_async(url, "0007")
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO contacts (channel, address, phone, opted_out, verified_cnic, "
                    "created_at) VALUES ('sms', '+923001234567', '+923001234567', false, "
                    "'3520112345671', now())"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO grievances (ticket_id, cnic, category, description, status, "
                    "channel, callback_requested, created_at, updated_at, due_at, "
                    "reopened_count) VALUES ('GRV2K7QX', '3520112345671', 'other', '', 'open', "
                    "'sms', false, now(), now(), now(), 0)"
                )
            )
            await conn.execute(
                text(
                    'INSERT INTO outbound_messages (channel, "to", body, kind, priority, '
                    "status, attempts, next_attempt_at, error, created_at) VALUES ('sms', "
                    "'+923001234567', 'x', 'reply', 1, 'failed', 1, now(), 'twilio error "
                    "30003', now())"
                )
            )
            await conn.execute(text(_AUDIT_ROW), {"actor": "ayesha"})
    finally:
        await engine.dispose()


async def _index_states(url: str) -> dict[str, bool]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT c.relname, i.indisvalid FROM pg_index i "
                    "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = ANY(:names)"
                ),
                {"names": list(ONLINE_INDEXES)},
            )
            return {name: valid for name, valid in rows}
    finally:
        await engine.dispose()


async def test_upgrading_a_deployed_database_lets_writes_go_on_while_indexes_build(
    fresh_postgres,
):
    """A plain CREATE INDEX queues every write to its table behind it until the build ends (on
    a national registry's audit log or contacts, minutes of console actions and messages
    waiting). 0008 builds concurrently: an audit entry written while its index waits for an
    open transaction goes straight in."""
    await _populate(fresh_postgres)
    engine = create_engine(fresh_postgres)
    try:
        async with engine.connect() as open_transaction:
            # A console action still in its transaction when the upgrade starts: every build
            # on audit_log, plain or concurrent, waits for it to end.
            await open_transaction.execute(text(_AUDIT_ROW), {"actor": "bilal"})
            upgrading = asyncio.create_task(upgrade_async(fresh_postgres))
            async with engine.connect() as watcher:
                for _ in range(300):
                    building = await watcher.scalar(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                            "current_database() AND wait_event_type = 'Lock' AND query LIKE "
                            "'CREATE INDEX%ix_audit_log_actor_at%'"
                        )
                    )
                    await watcher.rollback()
                    if building or upgrading.done():
                        break
                    await asyncio.sleep(0.1)
            assert not upgrading.done(), "the build did not wait for the open transaction"
            assert building, "the audit log's index build was never seen waiting"
            async with engine.connect() as writer:
                # Five seconds for what takes milliseconds; a write queued behind a plain
                # build's lock is cancelled here (the build never ends while the open
                # transaction lasts).
                await writer.execute(text("SET statement_timeout = '5s'"))
                try:
                    await writer.execute(text(_AUDIT_ROW), {"actor": "chand"})
                    await writer.commit()
                    written = True
                except DBAPIError:
                    written = False
            await open_transaction.commit()
        await asyncio.wait_for(upgrading, timeout=60)
    finally:
        await engine.dispose()
    assert written, "an audit entry waited behind the index build"
    assert await _index_states(fresh_postgres) == dict.fromkeys(ONLINE_INDEXES, True)
    assert await _diff(fresh_postgres) == []


async def test_replicas_upgrading_a_deployed_database_at_once_all_start(fresh_postgres):
    """Replicas of a new release start together on a deployed database: one builds 0008's
    indexes concurrently while the others wait for the migration lock. A concurrent build waits
    for every transaction older than it, and a replica blocked in `pg_advisory_lock` sits in
    one: they deadlocked and the waiting replicas died. They poll for the lock instead, with no
    transaction open between tries."""
    await _populate(fresh_postgres)
    await _replicas_upgrade(fresh_postgres)
    assert await _index_states(fresh_postgres) == dict.fromkeys(ONLINE_INDEXES, True)
    assert await _diff(fresh_postgres) == []


async def test_an_interrupted_concurrent_build_is_built_again(fresh_postgres):
    """A concurrent build that stops half-way (a restart, a cancelled statement) leaves an
    INVALID index of its name behind: the next upgrade replaces it instead of failing on
    'already exists' or keeping an index no query uses."""
    await _populate(fresh_postgres)
    engine = create_engine(fresh_postgres)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(_AUDIT_ROW), {"actor": "ayesha"})
        async with engine.connect() as conn:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            with pytest.raises(Exception, match="could not create unique index"):
                await autocommit.execute(
                    text(
                        "CREATE UNIQUE INDEX CONCURRENTLY ix_audit_log_actor_at "
                        "ON audit_log (actor)"
                    )
                )
    finally:
        await engine.dispose()
    assert await _index_states(fresh_postgres) == {"ix_audit_log_actor_at": False}
    await upgrade_async(fresh_postgres)
    assert await _index_states(fresh_postgres) == dict.fromkeys(ONLINE_INDEXES, True)
    assert await _diff(fresh_postgres) == []


async def test_the_online_indexes_go_down_and_up_again(fresh_postgres):
    await _populate(fresh_postgres)
    await upgrade_async(fresh_postgres)
    await asyncio.to_thread(command.downgrade, alembic_config(fresh_postgres), "0007")
    assert await _index_states(fresh_postgres) == {}
    await upgrade_async(fresh_postgres)
    assert await _index_states(fresh_postgres) == dict.fromkeys(ONLINE_INDEXES, True)
    assert await _diff(fresh_postgres) == []


async def test_opt_outs_made_before_their_reason_was_recorded_read_as_stop(fresh_postgres):
    """0010 adds contacts.opted_out_by without touching a row: a contact opted out before it
    keeps NULL, which is a STOP (an unblock never ends it); it goes down and up again."""
    await upgrade_async(fresh_postgres, "0009")
    engine = create_engine(fresh_postgres)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO contacts (channel, address, opted_out, created_at) "
                    "VALUES ('telegram', '5012345678', true, now())"
                )
            )
        await upgrade_async(fresh_postgres)
        async with engine.connect() as conn:
            row = (await conn.execute(text("SELECT opted_out, opted_out_by FROM contacts"))).one()
        assert tuple(row) == (True, None)
        await asyncio.to_thread(command.downgrade, alembic_config(fresh_postgres), "0009")
        async with engine.connect() as conn:
            columns = await conn.execute(
                text(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = 'contacts' AND column_name = 'opted_out_by'"
                )
            )
            assert columns.all() == []
        await upgrade_async(fresh_postgres)
    finally:
        await engine.dispose()
    assert await _diff(fresh_postgres) == []
