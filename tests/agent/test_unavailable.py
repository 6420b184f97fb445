"""What an agent sees when the database is away: the console's own page in her language, with
a word on whether what she sent was kept, never the API's problem JSON."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.agent.conftest import csrf_token
from tests.agent.test_callers import open_lookup
from tests.conftest import app_client, running_app
from tests.faults.services import free_port


@pytest.fixture
async def database_away(settings, monkeypatch) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the app started against a database that refuses connections, with the same
    Redis (so a session signed in on the working app is still recognised there)."""
    if not settings.redis_url:
        pytest.skip("needs the real Redis: a session must outlive the app it was made on")
    away = settings.model_copy(
        update={"database_url": f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x"}
    )
    async with running_app(away) as application, app_client(application) as client:
        yield client


async def test_with_the_database_away_a_page_says_so_in_the_agents_language(
    new_client, staff, database_away
):
    amina = await new_client("amina")
    database_away.cookies = amina.cookies
    for language, words in (("en", "The console cannot reach its database"), ("ur", "ڈیٹابیس")):
        database_away.cookies.set("rabta_agent_lang", language)
        response = await database_away.get("/agent/grievances")
        assert response.status_code == 503
        assert response.headers["content-type"].startswith("text/html")
        assert response.headers["retry-after"]
        assert words in response.text
        assert "application/problem+json" not in response.headers["content-type"]


async def test_a_form_sent_while_the_database_is_away_is_said_not_to_be_saved(
    new_client, staff, database_away
):
    amina = await new_client("amina")
    lookup = await open_lookup(amina)
    token = csrf_token((await amina.get(lookup)).text)
    database_away.cookies = amina.cookies
    response = await database_away.post(
        f"{lookup}/code",
        data={"csrf_token": token},
        headers={"referer": f"http://127.0.0.1:8000{lookup}"},
    )
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert "Nothing you sent was saved" in response.text


async def test_a_stalled_database_is_a_page_saying_so_not_a_wait(
    new_client, staff, db, settings, monkeypatch
):
    """A lock held on the agents' table (a migration, a stuck transaction) used to keep the
    page blank for as long as it lasted. Past RABTA_SURGE_ANSWER_WITHIN_MS the statement is
    called off and the agent is told, as when the database is away."""
    from sqlalchemy import text

    from api.surge import get_surge_settings

    if not settings.database_url.startswith("postgresql"):
        pytest.skip("a statement timeout is PostgreSQL's")
    amina = await new_client("amina")
    monkeypatch.setenv("RABTA_SURGE_ANSWER_WITHIN_MS", "500")
    get_surge_settings.cache_clear()
    try:
        async with db.engine.connect() as locker:
            await locker.execute(text("LOCK TABLE agents IN ACCESS EXCLUSIVE MODE"))
            # Bounded here too: without the fix the page waits for the lock, held until then.
            response = await asyncio.wait_for(amina.get("/agent/grievances"), timeout=10)
            await locker.rollback()
    finally:
        # The bound back to its own figure before anything reads it again: the page read below
        # would otherwise cache 500 ms for every test after this one.
        monkeypatch.delenv("RABTA_SURGE_ANSWER_WITHIN_MS")
        get_surge_settings.cache_clear()
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert "The console cannot reach its database" in response.text
    assert (await amina.get("/agent/grievances")).status_code == 200
