"""Signing in: argon2 passwords, lockout, CSRF, session cookies, fixation, logout, headers."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from api.agent import service
from api.agent.passwords import hash_password, needs_rehash, verify_password
from api.agent.sessions import SessionStore
from api.registry.models import Agent
from tests.agent.conftest import PASSWORD, STAFF, audit_entries, csrf_token, login
from tests.agent.test_grievances import events, file
from tests.conftest import app_client


def test_production_hashes_use_argon2id_at_rfc_9106_cost():
    from argon2 import Type

    from api.agent.passwords import PARAMETERS

    assert PARAMETERS.type is Type.ID
    assert (PARAMETERS.time_cost, PARAMETERS.memory_cost, PARAMETERS.parallelism) == (3, 65536, 4)


async def test_passwords_are_argon2id_hashes():
    stored = hash_password("a long enough secret")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "a long enough secret")
    assert not verify_password(stored, "a long enough secreT")
    assert not verify_password("not a hash", "anything")
    assert not needs_rehash(stored)


async def test_an_anonymous_visit_is_sent_to_the_login_page(client, staff):
    response = await client.get("/agent/grievances?view=escalated")
    assert response.status_code == 303
    assert response.headers["location"] == (
        "/agent/login?next=%2Fagent%2Fgrievances%3Fview%3Descalated"
    )
    page = await client.get(response.headers["location"])
    assert page.status_code == 200
    # Visible labels a person, a screen reader and a test find by name (SPEC §9).
    assert '<label for="username">Username</label>' in page.text
    assert '<label for="password">Password</label>' in page.text
    assert ">Sign in</button>" in page.text
    assert 'name="next" value="/agent/grievances?view=escalated"' in page.text


async def test_signing_in_sets_a_hardened_session_cookie_and_audits_it(client, staff, registry):
    response = await login(client, "amina", PASSWORD)
    assert response.status_code == 303
    assert response.headers["location"] == "/agent"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("rabta_agent=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie  # development over http; see the production test below
    home = await client.get("/agent")
    assert home.status_code == 200
    assert '<label for="cnic">CNIC</label>' in home.text
    assert "amina" in home.text
    [entry] = await audit_entries(registry, action="login")
    assert (entry.actor, entry.record_type, entry.record_id) == ("amina", "agent", "amina")
    assert entry.client_ip


async def test_production_cookies_are_secure_and_host_only(settings):
    from api.agent.sessions import cookie_name, secure_cookies

    production = settings.model_copy(update={"rabta_env": "production"})
    assert secure_cookies(production)
    assert cookie_name(production) == "__Host-rabta_agent"
    assert not secure_cookies(settings)


async def test_a_wrong_password_is_refused_with_the_same_words_as_an_unknown_user(
    client, staff, registry
):
    wrong = await login(client, "amina", "not the password at all")
    unknown = await login(client, "nobody", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    message = "Wrong username or password, or the account is locked."
    assert message in wrong.text and message in unknown.text
    failed = await audit_entries(registry, action="login_failed")
    assert [(e.actor, e.reason) for e in failed] == [
        ("amina", "wrong password"),
        ("anonymous", "unknown user"),
    ]


async def test_five_failures_lock_the_account_for_fifteen_minutes(client, staff, registry):
    for _ in range(service.LOCKOUT_AFTER):
        assert (await login(client, "amina", "wrong wrong wrong")).status_code == 401
    async with registry.sessions() as session:
        agent = await session.scalar(select(Agent).where(Agent.username == "amina"))
        locked_until = agent.locked_until.replace(tzinfo=dt.UTC)
    remaining = locked_until - dt.datetime.now(dt.UTC)
    assert dt.timedelta(minutes=14) < remaining <= dt.timedelta(minutes=15)
    # Locked: even the right password is refused, and says nothing more.
    refused = await login(client, "amina", PASSWORD)
    assert refused.status_code == 401
    locked = await audit_entries(registry, action="login_failed")
    assert locked[-1].reason == "account locked"
    assert "locked for 15 minutes" in locked[-2].reason
    # Another account is untouched.
    assert (await login(client, "bilal", PASSWORD)).status_code == 303
    # Fifteen minutes later the right password works and the count starts afresh.
    async with registry.transaction() as session:
        await session.execute(
            update(Agent)
            .where(Agent.username == "amina")
            .values(locked_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    assert (await login(client, "amina", PASSWORD)).status_code == 303
    async with registry.sessions() as session:
        agent = await session.scalar(select(Agent).where(Agent.username == "amina"))
        assert (agent.failed_logins, agent.locked_until) == (0, None)


async def test_a_success_clears_earlier_failures(client, staff, registry):
    for _ in range(service.LOCKOUT_AFTER - 1):
        await login(client, "amina", "wrong wrong wrong")
    assert (await login(client, "amina", PASSWORD)).status_code == 303
    async with registry.sessions() as session:
        agent = await session.scalar(select(Agent).where(Agent.username == "amina"))
        assert agent.failed_logins == 0


async def test_a_call_centre_behind_one_address_is_limited_by_its_failures_only(
    new_client, staff, registry
):
    """Every sign-in here comes from one address, as a call centre's whole shift does from
    behind its NAT: successes never count, failures do (password spraying)."""
    from api.agent.routes.auth import LOGIN_FAILURES_PER_IP

    limit = int(LOGIN_FAILURES_PER_IP.split("/")[0])
    for turn in range(limit + 5):
        agent = await new_client()
        username = sorted(STAFF)[turn % len(STAFF)]
        assert (await login(agent, username, PASSWORD)).status_code == 303, turn
    sprayer = await new_client()
    # Spread over the accounts (as a spray is), so no account locks before the address does.
    for turn in range(limit):
        username = f"guess{turn}"
        assert (await login(sprayer, username, "wrong wrong wrong")).status_code == 401, turn
    refused = await login(sprayer, "amina", PASSWORD)
    assert refused.status_code == 429
    assert "Too many sign-in attempts from this computer." in refused.text
    # The address is refused, whoever signs in from it, until its failures age out.
    assert (await login(await new_client(), "bilal", PASSWORD)).status_code == 429
    assert len(await audit_entries(registry, action="login_failed")) == limit


async def test_a_sprayer_cannot_take_a_fresh_address_from_its_ipv6_network(app, staff):
    """An IPv6 host holds a whole /64: each failure from a new address in it still counts
    against the same budget."""
    from api.agent.routes.auth import LOGIN_FAILURES_PER_IP

    limit = int(LOGIN_FAILURES_PER_IP.split("/")[0])
    for turn in range(limit):
        async with app_client(app, peer=f"2001:db8:7:7::{turn + 1:x}") as sprayer:
            response = await login(sprayer, f"guess{turn}", "wrong wrong wrong")
            assert response.status_code == 401, turn
    async with app_client(app, peer="2001:db8:7:7:abcd::1") as sprayer:
        refused = await login(sprayer, "amina", PASSWORD)
    assert refused.status_code == 429
    async with app_client(app, peer="2001:db8:7:8::1") as elsewhere:
        assert (await login(elsewhere, "amina", PASSWORD)).status_code == 303


async def test_login_without_its_csrf_token_is_refused(client, staff):
    await client.get("/agent/login")
    response = await client.post(
        "/agent/login", data={"username": "amina", "password": PASSWORD, "csrf_token": "forged"}
    )
    assert response.status_code == 403
    assert "rabta_agent=" not in response.headers.get("set-cookie", "")


async def test_login_from_another_site_is_refused(client, staff):
    form = await client.get("/agent/login")
    response = await client.post(
        "/agent/login",
        data={"username": "amina", "password": PASSWORD, "csrf_token": csrf_token(form.text)},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403


async def test_a_planted_session_id_is_replaced_and_ended_at_sign_in(new_client, staff, app):
    # The attacker signs in and plants their session id in the victim's browser...
    attacker = await new_client("bilal")
    planted = attacker.cookies["rabta_agent"]
    victim = await new_client()
    victim.cookies.set("rabta_agent", planted, domain="127.0.0.1")
    response = await login(victim, "amina", PASSWORD)
    fresh = victim.cookies["rabta_agent"]
    assert response.status_code == 303 and fresh != planted
    # ...and the planted id stops working: nobody shares a session.
    assert (await attacker.get("/agent")).status_code == 303
    sessions = SessionStore(app.state.runtime.redis)
    assert await sessions.load(planted) is None
    assert await sessions.load(fresh) is not None


async def test_signing_out_ends_the_session_on_the_server(new_client, staff, registry):
    client = await new_client("amina")
    stolen = client.cookies["rabta_agent"]
    home = await client.get("/agent")
    response = await client.post("/agent/logout", data={"csrf_token": csrf_token(home.text)})
    assert response.status_code == 303
    assert response.headers["location"] == "/agent/login"
    replay = await new_client()
    replay.cookies.set("rabta_agent", stolen, domain="127.0.0.1")
    assert (await replay.get("/agent")).status_code == 303
    assert [e.actor for e in await audit_entries(registry, action="logout")] == ["amina"]


async def test_a_deactivated_account_is_signed_out_at_its_next_request(new_client, staff, registry):
    client = await new_client("amina")
    assert (await client.get("/agent")).status_code == 200
    async with registry.transaction() as session:
        await service.set_active(session, username="amina", active=False)
    assert (await client.get("/agent")).status_code == 303
    assert (await login(client, "amina", PASSWORD)).status_code == 401


async def test_console_pages_carry_security_headers(new_client, staff):
    client = await new_client("amina")
    for path in ("/agent", "/agent/login"):
        headers = (await client.get(path)).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "'unsafe-inline'" not in csp
        assert headers["cache-control"] == "no-store"
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
    static = await client.get("/agent/static/console.css")
    assert static.status_code == 200
    assert static.headers["cache-control"].startswith("public")


async def test_pages_have_no_inline_script_or_style(new_client, staff):
    client = await new_client("amina")
    html = (await client.get("/agent")).text
    assert "<script>" not in html and "<script " not in html.replace("<script src=", "")
    assert " style=" not in html and "<style" not in html
    assert " onclick=" not in html


async def test_only_console_paths_are_redirected_after_sign_in(client, staff):
    form = await client.get("/agent/login")
    response = await client.post(
        "/agent/login",
        data={
            "username": "amina",
            "password": PASSWORD,
            "csrf_token": csrf_token(form.text),
            "next": "https://evil.example/agent",
        },
    )
    assert response.headers["location"] == "/agent"


async def test_a_form_sent_after_the_session_ended_says_it_was_not_saved(
    new_client, staff, registry, settings, app
):
    ticket = await file(registry, settings)
    page = f"/agent/grievances/{ticket}"
    sadia = await new_client("sadia")
    token = csrf_token((await sadia.get(page)).text)
    # An hour without a request: the session is gone from Redis while the note was being typed.
    redis = app.state.runtime.redis
    async for key in redis.scan_iter("rabta:agent:session:*"):
        await redis.delete(key)
    sent = await sadia.post(
        f"{page}/notes",
        data={"note": "Please visit on Monday", "csrf_token": token},
        headers={"Referer": f"http://127.0.0.1:8000{page}"},
    )
    assert sent.status_code == 303
    shown = await sadia.get(sent.headers["location"])
    assert "what you just sent was not saved" in shown.text
    assert f'name="next" value="{page}"' in shown.text
    assert [e.action for e in await events(registry, ticket)] == ["filed"]
    # Signing in leads back to the grievance, to send the note again.
    form = csrf_token(shown.text)
    signed_in = await sadia.post(
        "/agent/login",
        data={"username": "sadia", "password": PASSWORD, "csrf_token": form, "next": page},
    )
    assert signed_in.headers["location"] == page
    # A form is sent back to the page it belongs to, whatever its Referer says; one that
    # belongs to no page goes by its Referer, and a Referer from elsewhere is no way out of the
    # console.
    async for key in redis.scan_iter("rabta:agent:session:*"):
        await redis.delete(key)
    evil = {"Referer": "https://evil.example/x"}
    away = await sadia.post(f"{page}/notes", data={"note": "x"}, headers=evil)
    assert (
        away.headers["location"] == f"/agent/login?next=%2Fagent%2Fgrievances%2F{ticket}&unsaved=1"
    )
    away = await sadia.post("/agent/grievances-escalate-overdue", data={}, headers=evil)
    assert away.headers["location"] == "/agent/login?next=%2Fagent&unsaved=1"
