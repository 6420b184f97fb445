"""The agent console, attacked: every /agent route × every role, CSRF on every form, session
fixation, and the security headers of every page (CSP, no caching, HSTS in production).

The expected role of each route is written down here (`ROUTES`), not read from the code; a test
checks that the table covers every console route the app serves, so a new route has to be
added to it (and so has to be thought about).
"""

from __future__ import annotations

import re

import httpx
import pytest

from api.agent.schemas import Role
from api.settings import Settings
from tests.agent.conftest import (  # noqa: F401 - fixtures
    PASSWORD,
    cheap_hashes,
    csrf_token,
    login,
    new_client,
    no_background_work,
    staff,
)
from tests.security.figures import figure

ANONYMOUS = None
AGENT, SUPERVISOR, ADMIN = Role.AGENT, Role.SUPERVISOR, Role.ADMIN
USERS = {ANONYMOUS: None, AGENT: "amina", SUPERVISOR: "sadia", ADMIN: "zara"}
RANK = {ANONYMOUS: 0, AGENT: 1, SUPERVISOR: 2, ADMIN: 3}

#: (method, path template) → the least role that may use it (None: anyone, signed in or not).
ROUTES: dict[tuple[str, str], Role | None] = {
    ("GET", "/agent/login"): ANONYMOUS,
    ("POST", "/agent/login"): ANONYMOUS,
    ("GET", "/agent/language"): ANONYMOUS,
    ("POST", "/agent/logout"): AGENT,
    ("GET", "/agent"): AGENT,
    ("POST", "/agent/callers"): AGENT,
    ("GET", "/agent/callers/{lookup_id}"): AGENT,
    ("POST", "/agent/callers/{lookup_id}/code"): AGENT,
    ("POST", "/agent/callers/{lookup_id}/verify"): AGENT,
    ("POST", "/agent/callers/{lookup_id}/override-request"): AGENT,
    ("POST", "/agent/callers/{lookup_id}/grievances"): AGENT,
    ("POST", "/agent/callers/{lookup_id}/override"): SUPERVISOR,
    ("GET", "/agent/grievances"): AGENT,
    ("GET", "/agent/grievances/{ticket_id}"): AGENT,
    ("POST", "/agent/grievances/{ticket_id}/notes"): AGENT,
    ("POST", "/agent/grievances/{ticket_id}/status"): AGENT,
    ("POST", "/agent/grievances/{ticket_id}/assign"): SUPERVISOR,
    ("POST", "/agent/grievances-escalate-overdue"): SUPERVISOR,
    ("GET", "/agent/dashboard"): SUPERVISOR,
    ("GET", "/agent/dashboard.csv"): SUPERVISOR,
    ("GET", "/agent/overrides"): SUPERVISOR,
    ("POST", "/agent/overrides/{request_id}/approve"): SUPERVISOR,
    ("POST", "/agent/overrides/{request_id}/deny"): SUPERVISOR,
    ("GET", "/agent/audit"): ADMIN,
    ("GET", "/agent/audit.csv"): ADMIN,
}
#: Values for path parameters: well-formed, but naming nothing (so no real record is touched).
PARAMETERS = {"lookup_id": "lk-does-not-exist", "ticket_id": "G-AAAAAA", "request_id": "none"}
#: Harmless form fields, so a permitted post is judged on authorisation, not on validation.
FIELDS = {"cnic": "6110100000017", "reason": "security test", "note": "x", "status": "open"}


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PARAMETERS[m.group(1)], path)


def flatten(routes):
    """Routes as served, through FastAPI's lazily included routers."""
    for route in routes:
        if hasattr(route, "effective_candidates"):
            yield from flatten(route.effective_candidates())
        else:
            yield route


def console_routes(app) -> set[tuple[str, str]]:
    found = set()
    for route in flatten(app.routes):
        path = getattr(route, "path", "") or ""
        if not path.startswith("/agent") or path == "/agent/{rest:path}":  # the console's 404
            continue
        original = getattr(route, "original_route", route)
        methods = getattr(route, "methods", None) or getattr(original, "methods", None) or ()
        for method in methods:
            if method != "HEAD":
                found.add((method, path))
    return found


def test_the_table_covers_every_console_route(settings: Settings):
    from api.main import create_app

    assert console_routes(create_app(settings)) == set(ROUTES)


async def clients_by_role(new_client) -> dict[Role | None, httpx.AsyncClient]:  # noqa: F811
    return {role: await new_client(user) for role, user in USERS.items()}


async def token_of(client: httpx.AsyncClient, role: Role | None) -> str:
    page = await client.get("/agent" if role else "/agent/login")
    return csrf_token(page.text)


async def test_every_route_by_every_role(new_client, staff, registry):  # noqa: F811
    clients = await clients_by_role(new_client)
    checked = allowed = refused = 0
    for (method, template), least in sorted(ROUTES.items(), key=lambda r: r[0][1]):
        if template in ("/agent/login", "/agent/logout"):
            continue  # signing in and out change the session; see the session tests below
        path = concrete(template)
        for role, client in clients.items():
            if method == "GET":
                response = await client.get(path)
            else:
                data = {**FIELDS, "csrf_token": await token_of(client, role)}
                response = await client.post(path, data=data)
            checked += 1
            where = (method, template, role and role.value, response.status_code)
            assert response.status_code < 500, where
            if RANK[role] >= RANK[least]:
                allowed += 1
                assert response.status_code != 403, where
                assert not response.headers.get("location", "").startswith("/agent/login"), where
            elif role is ANONYMOUS:
                refused += 1
                # Not signed in: to the login page (a form too: it says the form was not sent).
                assert response.status_code == 303, where
                assert response.headers["location"].startswith("/agent/login"), where
            else:
                refused += 1
                assert response.status_code == 403, where
                assert "This page is for" in response.text, where
    figure(
        f"Console role matrix: {len(ROUTES) - 2} routes x 4 roles (anonymous, agent, supervisor, "
        f"admin) = {checked} requests: {allowed} permitted, {refused} refused (403, or 303 to "
        f"the login page), 0 5xx"
    )


def post_routes() -> list[str]:
    return sorted(
        concrete(path)
        for (method, path) in ROUTES
        if method == "POST" and path not in ("/agent/login",)
    )


async def test_every_form_refuses_a_forged_request(new_client, staff, registry):  # noqa: F811
    admin = await new_client("zara")
    other = await new_client("sadia")
    right = await token_of(admin, ADMIN)
    foreign = await token_of(other, SUPERVISOR)
    forgeries = {
        "no token": {},
        "empty token": {"csrf_token": ""},
        "made-up token": {"csrf_token": "0" * len(right)},
        "another session's token": {"csrf_token": foreign},
        "the login form's token": {
            "csrf_token": csrf_token((await other.get("/agent/login")).text)
        },
    }
    refused = 0
    for path in post_routes():
        for name, extra in forgeries.items():
            response = await admin.post(path, data={**FIELDS, **extra})
            assert response.status_code == 403, (path, name, response.status_code)
            refused += 1
        cross_site = await admin.post(
            path,
            data={**FIELDS, "csrf_token": right},
            headers={"Origin": "https://evil.example"},
        )
        assert cross_site.status_code == 403, (path, "cross-site origin")
        refused += 1
    # Signing out is the last check: the right token is accepted.
    accepted = await admin.post("/agent/logout", data={"csrf_token": right})
    assert accepted.status_code == 303
    figure(
        f"CSRF: {len(post_routes())} console forms x {len(forgeries) + 1} forgeries (no token, "
        f"empty, made-up, another session's, the login form's, right token from another site's "
        f"page) = {refused} posts, all refused with 403"
    )


async def test_login_csrf_and_session_fixation(new_client, staff, app):  # noqa: F811
    from api.agent.sessions import SessionStore

    sessions = SessionStore(app.state.runtime.redis)
    # Login CSRF: a token minted for another browser's login cookie is refused.
    attacker = await new_client()
    stolen = csrf_token((await attacker.get("/agent/login")).text)
    victim = await new_client()
    await victim.get("/agent/login")
    forced = await victim.post(
        "/agent/login", data={"username": "bilal", "password": PASSWORD, "csrf_token": stolen}
    )
    assert forced.status_code == 403 and "rabta_agent" not in victim.cookies
    # Fixation: an id chosen by the attacker is never adopted...
    planted = "attacker-chosen-session-id-0123456789"
    victim.cookies.set("rabta_agent", planted, domain="127.0.0.1")
    assert (await login(victim, "amina", PASSWORD)).status_code == 303
    fresh = victim.cookies["rabta_agent"]
    assert fresh != planted and await sessions.load(planted) is None
    # ...a new id is issued at every sign-in, and the old one dies with sign-out.
    home = await victim.get("/agent")
    assert (await login(victim, "amina", PASSWORD)).status_code == 303
    second = victim.cookies["rabta_agent"]
    assert second != fresh
    await victim.post(
        "/agent/logout", data={"csrf_token": csrf_token((await victim.get("/agent")).text)}
    )
    for old in (fresh, second):
        replay = await new_client()
        replay.cookies.set("rabta_agent", old, domain="127.0.0.1")
        assert (await replay.get("/agent")).status_code == 303
    assert home.status_code == 200
    figure(
        "Console sessions: login CSRF refused (403); a planted session id is never adopted; "
        "a new id at each sign-in; ids dead after sign-out (replayed cookies sent to login)"
    )


CSP_MUST = (
    "default-src 'none'",
    "script-src 'self'",
    "frame-ancestors 'none'",
    "form-action 'self'",
)


async def test_every_console_page_carries_the_security_headers(
    new_client,  # noqa: F811
    staff,  # noqa: F811
    registry,
):
    admin = await new_client("zara")
    anonymous = await new_client()
    pages = [concrete(p) for (m, p) in ROUTES if m == "GET"] + ["/agent/no-such-page"]
    checked = 0
    for client in (admin, anonymous):
        for path in pages:
            response = await client.get(path)
            headers = response.headers
            csp = headers.get("content-security-policy", "")
            where = (path, response.status_code)
            assert all(part in csp for part in CSP_MUST), where
            assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, where
            assert headers.get("cache-control") == "no-store", where
            assert headers.get("x-frame-options") == "DENY", where
            assert headers.get("x-content-type-options") == "nosniff", where
            assert "strict-transport-security" not in headers, where  # development: no TLS
            checked += 1
    figure(
        f"Console headers: {checked} responses (every GET page, signed in and not, error pages "
        f"included): strict CSP (default-src 'none', no inline script), no-store, DENY framing, "
        f"nosniff"
    )


@pytest.fixture
async def production_client(settings: Settings, db, redis):
    from api.chat import in_process_client
    from api.main import create_app

    # Production's other demands (PostgreSQL, Redis, real secrets) are checked at start-up,
    # in tests/test_settings.py; only what the middleware reads from the mode matters here.
    production = settings.model_copy(update={"rabta_env": "production"})
    async with in_process_client(create_app(production), "http://127.0.0.1:8000") as http:
        yield http


PRIVATE = ["/v1/me", "/v1/me/payments", "/v1/me/grievances", "/agent/login", "/agent"]


async def test_production_sends_hsts_everywhere_and_no_store_on_private_answers(
    production_client, registry
):
    public = ["/healthz", "/v1/eligibility/3520212345671"]
    for path in PRIVATE + public:
        response = await production_client.get(path)
        hsts = response.headers.get("strict-transport-security", "")
        assert "max-age=" in hsts and int(re.search(r"max-age=(\d+)", hsts).group(1)) >= 15552000
        if path in PRIVATE:
            assert response.headers.get("cache-control") == "no-store", path
    otp = await production_client.post("/v1/otp", json={"cnic": "3520212345671"})
    assert otp.headers.get("cache-control") == "no-store"
    webhook = await production_client.post("/webhooks/ussd", data={})
    assert webhook.headers.get("cache-control") == "no-store"
    figure(
        "Headers in production: HSTS (max-age >= 180 days) on every answer; Cache-Control: "
        "no-store on /v1/me*, /v1/otp*, /webhooks/*, /agent/*"
    )
