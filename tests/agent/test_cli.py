"""`rabta agent create|password|deactivate`, and the demo logins of `rabta serve --demo`."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from api.agent.passwords import verify_password
from api.agent.service import DEMO_PASSWORD, DemoRefused, ensure_demo_agents
from api.agent.sessions import SessionStore
from api.cli import app
from api.db import Database
from api.redis import connect_redis
from api.registry.models import Agent
from api.settings import get_settings

runner = CliRunner()


async def agents(db) -> dict[str, Agent]:
    async with db.sessions() as session:
        return {a.username: a for a in await session.scalars(select(Agent))}


def agents_now(settings) -> dict[str, Agent]:
    """The accounts, read from a test that is not async (the CLI runs its own event loop)."""

    async def read() -> dict[str, Agent]:
        database = Database.from_settings(settings)
        try:
            return await agents(database)
        finally:
            await database.dispose()

    return asyncio.run(read())


def test_create_reads_the_password_from_stdin(db, settings):
    result = runner.invoke(
        app, ["agent", "create", "Amina.Khan", "--role", "supervisor"], input="a long password 1\n"
    )
    assert result.exit_code == 0, result.output
    assert "Created amina.khan (supervisor)" in result.output
    assert "a long password 1" not in result.output
    created = agents_now(settings)["amina.khan"]
    assert created.role == "supervisor" and created.active
    assert created.password_hash.startswith("$argon2id$")
    assert verify_password(created.password_hash, "a long password 1")


@pytest.mark.parametrize(
    ("arguments", "password", "message"),
    [
        (["agent", "create", "amina"], "short\n", "at least 12 characters"),
        (["agent", "create", "no spaces allowed"], "a long password 1\n", "A username is"),
        (["agent", "create", "amina", "--role", "boss"], "a long password 1\n", "boss"),
    ],
)
def test_create_refuses_what_it_cannot_keep(db, settings, arguments, password, message):
    result = runner.invoke(app, arguments, input=password)
    assert result.exit_code != 0
    assert message in result.output
    assert agents_now(settings) == {}


def test_a_username_is_taken_once(db, settings):
    runner.invoke(app, ["agent", "create", "amina"], input="a long password 1\n")
    again = runner.invoke(app, ["agent", "create", "AMINA"], input="another password 2\n")
    assert again.exit_code == 1 and "is taken" in again.output


def test_password_and_deactivate(db, settings):
    runner.invoke(app, ["agent", "create", "amina"], input="a long password 1\n")
    changed = runner.invoke(app, ["agent", "password", "amina"], input="a new password 22\n")
    assert changed.exit_code == 0, changed.output
    assert verify_password(agents_now(settings)["amina"].password_hash, "a new password 22")
    off = runner.invoke(app, ["agent", "deactivate", "amina"])
    assert off.exit_code == 0, off.output
    assert not agents_now(settings)["amina"].active
    missing = runner.invoke(app, ["agent", "deactivate", "nobody"])
    assert missing.exit_code == 1


async def test_demo_logins_are_made_once_and_refused_in_production(db, settings):
    made = await ensure_demo_agents(db, settings=settings)
    assert made == {"agent": "agent", "supervisor": "supervisor", "admin": "admin"}
    first = await agents(db)
    assert verify_password(first["admin"].password_hash, DEMO_PASSWORD)
    await ensure_demo_agents(db, settings=settings)  # a second start changes nothing
    assert {k: a.password_hash for k, a in (await agents(db)).items()} == {
        k: a.password_hash for k, a in first.items()
    }
    production = settings.model_copy(update={"rabta_env": "production"})
    with pytest.raises(DemoRefused):
        await ensure_demo_agents(db, settings=production)


def test_a_new_password_ends_the_accounts_sessions_only_where_it_can(db, settings, monkeypatch):
    """With REDIS_URL the server's sessions end; without it they live in the server's process,
    and the command says it could not end them instead of claiming it did."""
    runner.invoke(app, ["agent", "create", "amina"], input="a long password 1\n")
    agent_id = agents_now(settings)["amina"].id
    if settings.redis_url:
        session_id = asyncio.run(_open_session(settings, agent_id))
        changed = runner.invoke(app, ["agent", "password", "amina"], input="a new password 22\n")
        assert "its sessions have ended" in changed.output
        assert asyncio.run(_session_exists(settings, session_id)) is False
    monkeypatch.delenv("REDIS_URL", raising=False)
    get_settings.cache_clear()  # the settings fixture clears it again afterwards
    changed = runner.invoke(app, ["agent", "password", "amina"], input="a new password 33\n")
    assert changed.exit_code == 0, changed.output
    said = " ".join(changed.output.split())
    assert "have ended" not in said
    assert "could not be ended from here" in said and "when the server restarts" in said
    assert verify_password(agents_now(settings)["amina"].password_hash, "a new password 33")


async def _open_session(settings, agent_id: int) -> str:
    redis = connect_redis(settings)
    try:
        session_id, _ = await SessionStore(redis).create(agent_id=agent_id)
        return session_id
    finally:
        await redis.aclose()


async def _session_exists(settings, session_id: str) -> bool:
    redis = connect_redis(settings)
    try:
        return await SessionStore(redis).load(session_id) is not None
    finally:
        await redis.aclose()
