"""Who may open what: agents, supervisors and admins (each role includes the ones before it)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

AGENT_PAGES = ["/agent", "/agent/grievances", "/agent/grievances?view=breached"]
SUPERVISOR_PAGES = ["/agent/dashboard", "/agent/dashboard.csv", "/agent/overrides"]
ADMIN_PAGES = ["/agent/audit", "/agent/audit.csv"]


def titled(title: str) -> str:
    return f"<title>{title} · Rabta console</title>"


#: What shows a page is the one asked for: its title (and view), or an export's header row.
SHOWN_BY = {
    "/agent": [titled("Callers")],
    "/agent/grievances": [titled("Grievances")],
    "/agent/grievances?view=breached": [
        titled("Grievances"),
        '<input type="hidden" name="view" value="breached">',
    ],
    "/agent/dashboard": [titled("Dashboard")],
    "/agent/dashboard.csv": ['"section","key","day","value"'],
    "/agent/overrides": [titled("Override requests")],
    "/agent/audit": [titled("Audit log")],
    "/agent/audit.csv": ['"at","actor","action","record_type","record_id","reason","client_ip"'],
}
#: What the refusal of a page says: whom it is for.
FOR_WHOM = {
    **dict.fromkeys(SUPERVISOR_PAGES, "This page is for supervisors."),
    **dict.fromkeys(ADMIN_PAGES, "This page is for admins."),
}


@pytest.mark.parametrize(
    ("username", "allowed", "refused"),
    [
        ("amina", AGENT_PAGES, SUPERVISOR_PAGES + ADMIN_PAGES),
        ("sadia", AGENT_PAGES + SUPERVISOR_PAGES, ADMIN_PAGES),
        ("zara", AGENT_PAGES + SUPERVISOR_PAGES + ADMIN_PAGES, []),
    ],
)
async def test_role_matrix(new_client, staff, username, allowed, refused):
    client = await new_client(username)
    for path in allowed:
        response = await client.get(path)
        assert response.status_code == 200, (username, path)
        for marker in SHOWN_BY[path]:
            assert marker in response.text, (username, path, marker)
    for path in refused:
        response = await client.get(path)
        assert response.status_code == 403, (username, path)
        assert response.headers["content-type"].startswith("text/html")
        assert f'<p class="flash flash-error" role="alert">{FOR_WHOM[path]}</p>' in response.text
        # The refusal is a console page: still signed in, with the navigation.
        assert ">Sign out</button>" in response.text


async def test_navigation_shows_what_the_role_may_open(new_client, staff):
    agent = (await (await new_client("amina")).get("/agent")).text
    supervisor = (await (await new_client("sadia")).get("/agent")).text
    admin = (await (await new_client("zara")).get("/agent")).text
    assert 'href="/agent/dashboard"' not in agent and 'href="/agent/audit"' not in agent
    assert 'href="/agent/dashboard"' in supervisor and 'href="/agent/audit"' not in supervisor
    assert 'href="/agent/dashboard"' in admin and 'href="/agent/audit"' in admin


@pytest.mark.parametrize("path", SUPERVISOR_PAGES + ADMIN_PAGES + AGENT_PAGES)
async def test_nothing_without_a_session(client, staff, path):
    """To the login page, which leads back to the page asked for (the console's home is where
    signing in leads anyway)."""
    response = await client.get(path)
    assert response.status_code == 303
    back = "" if path == "/agent" else "?" + urlencode({"next": path})
    assert response.headers["location"] == "/agent/login" + back


async def test_an_unknown_console_path_is_the_consoles_own_404(client, staff):
    response = await client.get("/agent/no-such-page")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "There is no such page in the console." in response.text
    assert (await client.get("/agent/static/console.js")).status_code == 200


@pytest.mark.parametrize(
    ("typed", "page"),
    [
        ("/agent/", "/agent"),
        ("/agent/login/", "/agent/login"),
        ("/agent/audit/?page=2", "/agent/audit?page=2"),
    ],
)
async def test_a_console_address_typed_with_a_trailing_slash_leads_to_its_page(
    client, staff, typed, page
):
    """`/agent/` is how many people write the console's address: it is the console, as any
    other path of the app written with a trailing slash is the page without it."""
    response = await client.get(typed)
    assert response.status_code == 307
    assert response.headers["location"] == page
    signed_out = await client.get(typed, follow_redirects=True)
    assert signed_out.status_code == 200
    assert 'for="username"' in signed_out.text
