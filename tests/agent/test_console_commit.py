"""The agent console when PostgreSQL goes away at the moment a grievance's transaction commits
(a restart, a failover): the agent is never told a ticket that was not filed."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from api.registry.models import Grievance
from tests.agent.conftest import post_form
from tests.agent.test_callers import verified
from tests.conftest import commit_trigger

#: A deferred constraint trigger runs at COMMIT: this one ends its own connection there, as a
#: database restarting under the commit does.
LOSE_THE_COMMIT = (
    """CREATE OR REPLACE FUNCTION rabta_test_lose_commit() RETURNS trigger AS $$
    BEGIN
        PERFORM pg_terminate_backend(pg_backend_pid());
        RETURN NULL;
    END $$ LANGUAGE plpgsql""",
    """CREATE CONSTRAINT TRIGGER rabta_test_lose_commit AFTER INSERT ON grievances
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION rabta_test_lose_commit()""",
)
KEEP_THE_COMMIT = (
    "DROP TRIGGER IF EXISTS rabta_test_lose_commit ON grievances",
    "DROP FUNCTION IF EXISTS rabta_test_lose_commit()",
)


async def test_a_grievance_whose_commit_is_lost_is_not_reported_filed(new_client, staff, registry):
    amina = await new_client("amina")
    lookup = await verified(amina, registry)
    async with commit_trigger(registry, LOSE_THE_COMMIT, KEEP_THE_COMMIT):
        response = await post_form(
            amina,
            lookup,
            f"{lookup}/grievances",
            {"category": "other", "description": "Paisay nahi mile", "language": "ur"},
        )
    async with registry.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Grievance)) == 0
    assert response.status_code >= 500
    # Whatever page the agent opens next says nothing of a ticket.
    for page in (lookup, "/agent"):
        shown = (await amina.get(page)).text
        # A ticket id, not any "G-" (the page's random CSRF token may hold one).
        ticket = re.search(r"\bG-[0-9A-Z]{6}\b", shown)
        assert "ticket number by SMS" not in shown and ticket is None, page
