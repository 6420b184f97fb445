"""What an agent sees when the console fails on Rabta's side (a bug, a database refusing a
statement for what it is): the console's own page in her language, saying it was logged, never
the API's problem JSON; the error is logged with its traceback as any other."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import update

from api.registry.models import Grievance
from tests.agent.test_grievances import file
from tests.conftest import app_client, commit_trigger

REFUSE_AUDIT = [
    "CREATE FUNCTION rabta_test_refuse() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'audit refused'; END $$",
    "CREATE TRIGGER rabta_test_refuse BEFORE INSERT ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION rabta_test_refuse()",
]
DROP = [
    "DROP TRIGGER IF EXISTS rabta_test_refuse ON audit_log",
    "DROP FUNCTION IF EXISTS rabta_test_refuse()",
]


def console_500(response: httpx.Response, words: str) -> None:
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html"), response.text[:200]
    assert words in response.text


async def test_a_statement_the_database_refuses_is_the_consoles_500_page(
    new_client, staff, registry, settings, caplog
):
    ticket = await file(registry, settings)
    amina = await new_client("amina")
    async with commit_trigger(registry, REFUSE_AUDIT, DROP):
        for language, words in (("en", "it has been logged"), ("ur", "لاگ")):
            amina.cookies.set("rabta_agent_lang", language, path="/agent")
            console_500(await amina.get(f"/agent/grievances/{ticket}"), words)
    assert "audit refused" in caplog.text


async def test_an_unexpected_error_is_the_consoles_500_page(
    new_client, staff, registry, settings, app, caplog
):
    """A stored status this release does not know (written by a newer one, mid-upgrade) breaks
    the grievance's page: the agent is told so in the console's words."""
    ticket = await file(registry, settings)
    async with registry.transaction() as session:
        await session.execute(
            update(Grievance).where(Grievance.ticket_id == ticket).values(status="on_hold")
        )
    amina = await new_client("amina")
    # As a browser meets it: the server answers, and nothing is raised to the client.
    async with app_client(app) as browser:
        browser.cookies = amina.cookies
        transport = browser._transport
        assert isinstance(transport, httpx.ASGITransport)
        transport.raise_app_exceptions = False
        console_500(await browser.get(f"/agent/grievances/{ticket}"), "it has been logged")
    assert "unhandled error on GET /agent/grievances/" in caplog.text


@pytest.fixture(autouse=True)
def _postgres_only(settings):
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL (a trigger refuses the statement)")
