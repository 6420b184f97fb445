"""Input the console's fields were never meant to hold, typed or crafted: each is answered with
a console page (or read as nothing), never a 500."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from api.registry.models import Grievance
from tests.agent.conftest import csrf_token, post_form
from tests.agent.test_grievances import file


def refused_as_unreadable(response, words: str = "cannot read") -> None:
    assert response.status_code == 400, response.text[:300]
    assert response.headers["content-type"].startswith("text/html")
    assert words in response.text


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/agent/grievances", {"district": "Lahore\x00"}),
        ("/agent/audit", {"actor": "amina\x00"}),
        ("/agent/audit", {"record": "G-\x00"}),
        ("/agent/audit.csv", {"actor": "\x00"}),
    ],
)
async def test_a_nul_character_in_a_filter_is_refused_not_a_500(
    new_client, staff, registry, path, query
):
    """PostgreSQL text cannot hold NUL (U+0000): a filter holding one, sent to the database,
    failed there and answered the API's 500."""
    zara = await new_client("zara")
    refused_as_unreadable(await zara.get(path, params=query))
    zara.cookies.set("rabta_agent_lang", "ur", path="/agent")
    refused_as_unreadable(await zara.get(path, params=query), "کنسول نہیں پڑھ سکتا")


async def test_a_nul_character_at_sign_in_is_refused_not_a_500(new_client, staff):
    """Signing in looked the username up as typed: anyone could have the console answer 500s."""
    anonymous = await new_client()
    form = await anonymous.get("/agent/login")
    response = await anonymous.post(
        "/agent/login",
        data={
            "username": "amina\x00",
            "password": "x",
            "csrf_token": csrf_token(form.text),
            "next": "/agent",
        },
    )
    refused_as_unreadable(response)


@pytest.mark.parametrize("days", ["²", "99999999999999999999"])
async def test_a_period_that_is_no_number_of_days_shows_the_default(new_client, staff, days):
    """`str.isdigit` holds for '²', which int() refuses: a crafted period was a 500."""
    sadia = await new_client("sadia")
    page = await sadia.get("/agent/dashboard", params={"days": days})
    assert page.status_code == 200
    assert 'href="/agent/dashboard?days=14" aria-current="page"' in page.text
    export = await sadia.get("/agent/dashboard.csv", params={"days": days})
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")


@pytest.mark.parametrize("agent_id", ["²", "99999999999999999999", "٣", "x"])
async def test_an_assignee_that_is_no_member_of_staff_is_refused(
    new_client, staff, registry, settings, agent_id
):
    """A crafted choice was a 500 ('²', a number past the column's range), assigned someone
    ('٣' is 3 to int()) or took the grievance from its assignee (anything else)."""
    ticket = await file(registry, settings)
    sadia = await new_client("sadia")
    page = f"/agent/grievances/{ticket}"
    await post_form(sadia, page, f"{page}/assign", {"agent_id": str(staff["bilal"])})
    response = await post_form(sadia, page, f"{page}/assign", {"agent_id": agent_id})
    assert response.status_code == 303
    shown = await sadia.get(page)
    assert "That member of staff cannot take grievances." in shown.text
    async with registry.sessions() as session:
        grievance = await session.scalar(select(Grievance).where(Grievance.ticket_id == ticket))
    assert grievance.assigned_to == staff["bilal"]


@pytest.mark.parametrize(
    "query", [{"since": "0001-01-01"}, {"until": "0001-01-01"}, {"until": "9999-12-31"}]
)
async def test_the_audit_log_takes_the_first_and_last_days_a_date_field_allows(
    new_client, staff, query
):
    """A date field takes 0001-01-01, whose midnight in Pakistan is before the first moment
    Python's datetime holds in UTC: the filter was a 500."""
    zara = await new_client("zara")
    page = await zara.get("/agent/audit", params=query)
    assert page.status_code == 200
    none = "0 entries." in page.text
    assert none is (query == {"until": "0001-01-01"})
    export = await zara.get("/agent/audit.csv", params=query)
    assert export.status_code == 200
