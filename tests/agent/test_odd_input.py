"""Input the console's fields were never meant to hold, typed or crafted: each is answered with
a console page (or read as nothing), never a 500."""

from __future__ import annotations

import pytest

from tests.agent.conftest import csrf_token


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
