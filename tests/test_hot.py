"""api/hot.py: the hot path's statements on the driver directly, inside SQLAlchemy's transaction.

What must hold whichever way a statement runs: the same rows, and the message's atomicity: a
statement run on the driver belongs to the session's transaction, so a rollback undoes it."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, literal_column, select, text
from sqlalchemy.exc import DBAPIError, OperationalError

from api import hot
from api.conversations import repository
from api.db import utc
from api.problems import is_database_unavailable
from api.registry.models import Contact, InboundMessage


async def count(db, model) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_statements_run_inside_the_sessions_transaction_and_roll_back_with_it(db):
    on_postgres = db.engine.dialect.driver == "asyncpg"
    async with db.sessions() as session, session.begin():
        claim = await repository.claim_inbound(session, channel="sms", external_id="SMhot1")
        connection = await session.connection()
        driver = (await connection.get_raw_connection()).driver_connection
        # The first statement began the transaction; on PostgreSQL the rest go to the driver.
        assert driver is not None
        if on_postgres:
            assert driver.is_in_transaction()
        contact = await repository.get_or_create_contact(
            session, channel="sms", address="+923001234567", phone="+923001234567"
        )
        await repository.finish_inbound(
            session, claim, contact_id=contact.id, reply="hello", intent="help", language="en"
        )
        rows = await hot.rows(
            session,
            select(InboundMessage.reply).where(InboundMessage.id == claim.id),
            {},
        )
        assert [tuple(r) for r in rows] == [("hello",)]
        if on_postgres:
            assert type(rows[0]).__module__.startswith("asyncpg"), "ran on the driver"
        await session.rollback()
    assert await count(db, InboundMessage) == 0, "the driver's statements rolled back too"
    assert await count(db, Contact) == 0


async def test_the_same_rows_as_through_sqlalchemy_and_committed_with_the_session(db):
    now = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)
    async with db.sessions() as session, session.begin():
        await repository.claim_inbound(session, channel="sms", external_id="SMhot2")
        first = await repository.get_or_create_contact(
            session, channel="sms", address="+923001234567", phone="+923001234567", now=now
        )
        again = await repository.get_or_create_contact(
            session, channel="sms", address="+923001234567", phone="+923001234567", now=now
        )
        assert (first.id, first.phone, first.language, first.opted_out) == (
            again.id,
            "+923001234567",
            None,
            False,
        )
        replay = await repository.claim_inbound(session, channel="sms", external_id="SMhot2")
        assert replay.replay
    async with db.sessions() as session:
        stored = await session.scalar(select(Contact.last_inbound_at))
    assert stored is not None
    assert (stored if stored.tzinfo else stored.replace(tzinfo=dt.UTC)) == now


async def test_a_sessions_first_statement_goes_through_sqlalchemy(db):
    """Before SQLAlchemy has begun the session's transaction there is none to join: SQLAlchemy
    runs the statement (and begins it)."""
    async with db.sessions() as session:
        rows = await hot.rows(session, select(func.count()).select_from(Contact), {})
    assert [tuple(r) for r in rows] == [(0,)]
    assert not type(rows[0]).__module__.startswith("asyncpg")


@pytest.mark.parametrize("way", ["lane", "session"])
async def test_in_autocommit_each_statement_commits_by_itself(db, way):
    """The look-up lanes' bare connections (`Database.autocommit`) and the registry's sessions in
    autocommit: on PostgreSQL on the driver, and every statement is durable at once, before the
    block ends (what `record_answered` relies on)."""
    opened = db.autocommit() if way == "lane" else db.registry_sessions()
    async with opened as session:
        recorded = await repository.record_answered(
            session, channel="sms", external_id="SMauto1", reply="r", intent="cnic", language="en"
        )
        async with db.engine.connect() as other:
            seen = await other.scalar(
                select(func.count())
                .select_from(repository.INBOUND)
                .where(repository.INBOUND.c.external_id == "SMauto1")
            )
        rows = await hot.rows(session, select(func.count()).select_from(Contact), {})
        # The same id again: not recorded twice; the earlier row's reply comes back instead.
        earlier = await repository.record_answered(
            session, channel="sms", external_id="SMauto1", reply="x", intent="cnic", language="en"
        )
    assert (recorded, seen) == (None, 1)
    assert earlier is not None
    assert (earlier.replay, earlier.reply, earlier.language) == (True, "r", "en")
    if db.engine.dialect.driver == "asyncpg":
        assert type(rows[0]).__module__.startswith("asyncpg")


async def test_the_lanes_services_read_through_a_session_bound_to_its_connection(registry):
    """A look-up lane holds a bare connection; what its flow reads with the ORM (a verified
    caller's full answer, the CNICs of a phone) runs on a session bound to that connection,
    which the lane then still records on: one connection per message, never two."""
    from types import SimpleNamespace

    from api.bot_services import LookupServices
    from api.identity import Cnic
    from api.settings import get_settings
    from tests.conftest import ELIGIBLE, ELIGIBLE_PHONE, ELIGIBLE_WIFE

    runtime = SimpleNamespace(settings=get_settings(), db=registry)
    async with registry.autocommit() as connection:
        services = LookupServices(
            runtime,  # type: ignore[arg-type]
            connection,
            channel="sms",
            sender=ELIGIBLE_PHONE,
        )
        full = await services.eligibility(Cnic.parse(ELIGIBLE), full=True)
        cnics = await services.cnics_for_phone(ELIGIBLE_PHONE)
        recorded = await repository.record_answered(
            connection,
            channel="sms",
            external_id="SMlane1",
            reply="r",
            intent="cnic",
            language="en",
        )
        checked_out = registry.engine.pool.checkedout()
    assert (full.status.value, full.cnic_masked) == ("eligible", "35202-*******-1")
    assert full.programmes, "the full answer, read through the ORM"
    assert sorted(cnics) == sorted([ELIGIBLE, ELIGIBLE_WIFE])
    assert recorded is None
    assert await count(registry, InboundMessage) == 1
    assert checked_out == 1


async def test_a_connection_lost_mid_message_is_a_retryable_database_error(db):
    """A PostgreSQL restart between two statements of a message: the error is SQLAlchemy's
    (503 with Retry-After, api/problems.py), the dead connection is dropped from the pool, and
    the next message works."""
    if db.engine.dialect.driver != "asyncpg":
        pytest.skip("the driver path exists only on PostgreSQL")
    with pytest.raises(OperationalError) as raised:
        async with db.sessions() as session, session.begin():
            await repository.claim_inbound(session, channel="sms", external_id="SMhot3")
            pid = await session.scalar(text("SELECT pg_backend_pid()"))
            async with db.engine.connect() as other:
                await other.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
            await repository.get_or_create_contact(
                session, channel="sms", address="+923001234567", phone="+923001234567"
            )
    assert raised.value.connection_invalidated and is_database_unavailable(raised.value)
    async with db.sessions() as session, session.begin():
        claim = await repository.claim_inbound(session, channel="sms", external_id="SMhot3")
        assert not claim.replay, "nothing of the lost message was committed"


async def test_a_lanes_connection_lost_is_a_retryable_database_error(db):
    """The same for a look-up lane's bare connection: the contact committed by itself, the
    record fails with an error the app answers 503, and the next lane gets a live connection."""
    if db.engine.dialect.driver != "asyncpg":
        pytest.skip("the driver path exists only on PostgreSQL")
    args = {"channel": "sms", "address": "+923001234567", "phone": "+923001234567"}
    with pytest.raises(OperationalError) as raised:
        async with db.autocommit() as connection:
            await repository.get_or_create_contact(connection, **args)
            pid = await connection.scalar(text("SELECT pg_backend_pid()"))
            async with db.engine.connect() as other:
                await other.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
            await repository.record_answered(
                connection,
                channel="sms",
                external_id="SMhot5",
                reply="r",
                intent="cnic",
                language="en",
            )
    assert raised.value.connection_invalidated and is_database_unavailable(raised.value)
    async with db.autocommit() as connection:
        recorded = await repository.record_answered(
            connection, channel="sms", external_id="SMhot5", reply="r", intent="cnic", language="en"
        )
    assert recorded is None, "the lost message was not recorded: its retry is answered anew"
    assert await count(db, Contact) == 1


async def test_a_wrong_statement_is_not_mistaken_for_an_outage(db):
    if db.engine.dialect.driver != "asyncpg":
        pytest.skip("the driver path exists only on PostgreSQL")
    async with db.sessions() as session, session.begin():
        await repository.claim_inbound(session, channel="sms", external_id="SMhot4")
        with pytest.raises(DBAPIError) as raised:
            await hot.rows(session, select(literal_column("1") / 0), {})
        await session.rollback()
    assert not is_database_unavailable(raised.value)


async def test_the_contact_and_a_household_read_together(registry):
    """The look-up lane's first statement: the contact's upsert and the household's coarse
    status, the same as each would be alone, for every kind of CNIC (one statement on
    PostgreSQL, two elsewhere)."""
    from api.registry import repository as registry_repository
    from tests.conftest import ELIGIBLE, NOT_ELIGIBLE, NOT_FOUND, UNDER_REVIEW

    now = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)
    async with registry.autocommit() as session:
        for turn, cnic in enumerate((ELIGIBLE, NOT_ELIGIBLE, UNDER_REVIEW, NOT_FOUND)):
            contact, household = await repository.get_or_create_contact_reading_household(
                session,
                channel="sms",
                address="+923001234567",
                phone="+923001234567",
                cnic=cnic,
                now=now + dt.timedelta(minutes=turn),
            )
            alone = await repository.get_or_create_contact(
                session, channel="sms", address="+923001234567", phone="+923001234567", now=now
            )
            assert (contact.id, contact.phone, contact.language, contact.opted_out) == (
                alone.id,
                "+923001234567",
                None,
                False,
            )
            assert not contact.changes()
            expected = await registry_repository.household_status(session, cnic=cnic)
            assert household == expected
            assert (household is None) == (cnic == NOT_FOUND)
    assert await count(registry, Contact) == 1


async def test_a_contact_saves_only_what_its_message_changed(db):
    """`save_contact` writes the changed columns alone: a message that chose a language leaves
    a verification that another message of the same person stored meanwhile as it is."""
    until = dt.datetime(2026, 11, 24, 9, 30, tzinfo=dt.UTC)
    args = {"channel": "sms", "address": "+923001234567", "phone": "+923001234567"}
    async with db.autocommit() as session:
        chooses = await repository.get_or_create_contact(session, **args)
        verifies = await repository.get_or_create_contact(session, **args)
        verifies.verified_cnic, verifies.verified_until = "3520212345672", until
        await repository.save_contact(session, verifies)
        chooses.language = "ur"
        await repository.save_contact(session, chooses)
        assert not chooses.changes(), "saved: nothing left to write"
        again = await repository.get_or_create_contact(session, **args)
    assert (again.language, again.verified_cnic) == ("ur", "3520212345672")
    assert again.verified_until is not None
    assert repository._comparable(again.verified_until) == repository._comparable(until)


async def test_registry_reads_go_to_the_replica_and_lanes_to_the_primary(db, monkeypatch, tmp_path):
    """With REGISTRY_DATABASE_URL set, `GET /v1/eligibility`'s bare connection is the replica's
    and the look-up lanes' the primary's, both in autocommit; without it, both the primary's."""
    from sqlalchemy.engine import make_url

    from api.db import Database
    from api.settings import get_settings

    primary = make_url(db.engine.url)
    async with db.registry_reads() as reads, db.autocommit() as lane:
        assert reads.engine.url == lane.engine.url == primary
        for connection in (reads, lane):
            assert connection.engine.get_execution_options()["isolation_level"] == "AUTOCOMMIT"
    replica = (
        primary.set(host="localhost")
        if primary.get_backend_name() == "postgresql"
        else primary.set(database=str(tmp_path / "replica.db"))
    )
    monkeypatch.setenv("REGISTRY_DATABASE_URL", replica.render_as_string(hide_password=False))
    get_settings.cache_clear()
    split = Database.from_settings(get_settings())
    try:
        async with split.registry_reads() as reads, split.autocommit() as lane:
            assert reads.engine.url == replica
            assert lane.engine.url == primary
            assert reads.engine.get_execution_options()["isolation_level"] == "AUTOCOMMIT"
    finally:
        await split.dispose()
        get_settings.cache_clear()


def test_a_stored_moment_comes_back_aware_and_in_utc():
    """`api.db.utc`: SQLite's naive datetimes are read as the UTC Rabta stored, and an aware
    moment in another zone is the same instant in UTC (the audit export, the console)."""
    naive = dt.datetime(2026, 11, 24, 9, 30)
    assert utc(naive) == dt.datetime(2026, 11, 24, 9, 30, tzinfo=dt.UTC)
    assert utc(naive).tzinfo is dt.UTC
    karachi = dt.datetime(2026, 11, 24, 14, 30, tzinfo=dt.timezone(dt.timedelta(hours=5)))
    assert utc(karachi).tzinfo is dt.UTC
    assert utc(karachi).isoformat() == "2026-11-24T09:30:00+00:00"
    aware = dt.datetime(2026, 11, 24, 9, 30, tzinfo=dt.UTC)
    assert utc(aware) is aware


async def _wal_flushes(connection, other) -> int:
    """WAL flushes PostgreSQL's backends have made so far (pg_stat_wal), with what
    `connection`'s backend has pending reported first."""
    await connection.execute(text("SELECT pg_stat_force_next_flush()"))
    await connection.commit()  # the flush comes at the end of a transaction
    await other.execute(text("SELECT pg_stat_clear_snapshot()"))
    flushes = int(await other.scalar(text("SELECT wal_sync FROM pg_stat_wal")) or 0)
    await other.commit()
    return flushes


async def test_a_lookups_statements_commit_without_waiting_for_the_disk(registry):
    """The look-up lane's two statements commit asynchronously: forty look-ups cost (almost)
    no WAL flush of their own, where forty claimed messages cost at least one each; and the
    setting lasts for the statement alone, not for what the pooled connection runs next."""
    from tests.conftest import ELIGIBLE

    if registry.engine.dialect.driver != "asyncpg":
        pytest.skip("asynchronous commit is PostgreSQL's")
    n = 40
    async with (
        registry.autocommit() as lane,
        registry.engine.connect() as claims_on,
        registry.engine.connect() as other,
    ):
        before = await _wal_flushes(lane, other)
        for i in range(n):
            contact, household = await repository.get_or_create_contact_reading_household(
                lane, channel="sms", address=f"+92300123{i:04d}", phone=None, cnic=ELIGIBLE
            )
            assert household is not None
            recorded = await repository.record_answered(
                lane,
                channel="sms",
                external_id=f"SMasync{i}",
                reply="r",
                intent="cnic",
                language="en",
                contact_id=contact.id,
            )
            assert recorded is None
        lookups = await _wal_flushes(lane, other) - before
        assert await lane.scalar(text("SHOW synchronous_commit")) == "on"
        before = await _wal_flushes(claims_on, other)
        for i in range(n):
            async with claims_on.begin():
                await repository.claim_inbound(claims_on, channel="sms", external_id=f"SMsync{i}")
        claims = await _wal_flushes(claims_on, other) - before
    assert claims >= n, claims
    assert lookups < n // 4, lookups
    assert await count(registry, InboundMessage) == 2 * n


async def test_a_statement_that_commits_asynchronously_refuses_a_transaction(db):
    """In a transaction, the look-up's record would make everything else in it asynchronous
    too (a claim, a complaint): it is refused, and the transaction rolls back."""
    if db.engine.dialect.driver != "asyncpg":
        pytest.skip("asynchronous commit is PostgreSQL's")
    with pytest.raises(ValueError, match="autocommit"):
        async with db.transaction() as session:
            await repository.claim_inbound(session, channel="sms", external_id="SMtx1")
            await repository.record_answered(
                session, channel="sms", external_id="SMtx2", reply="r", intent="cnic", language="en"
            )
    assert await count(db, InboundMessage) == 0
