"""The agent console, attacked: every /agent route × every role, CSRF on every form, session
fixation, and the security headers of every page (CSP, no caching, HSTS in production).

The expected role of each route is written down here (`ROUTES`), not read from the code; a test
checks that the table covers every console route the app serves, so a new route has to be
added to it (and so has to be thought about). Each cell of the matrix acts on a record of its
own (`CELLS`) and is held to what its role must get: a permitted request its page, or its
redirect to a page confirming the change; a refused one the login page or the 403 that says
whom the page is for. "Not refused" is not enough: a 404, a wrong page or a form that did
nothing would pass it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import pytest

from api.agent.access import CallerAccess
from api.agent.schemas import Role
from api.db import Database
from api.registry.models import Person
from api.settings import Settings
from tests.agent.conftest import (  # noqa: F401 - fixtures
    PASSWORD,
    cheap_hashes,
    csrf_token,
    login,
    new_client,
    no_background_work,
    post_form,
    staff,
)
from tests.agent.test_callers import open_lookup, sent_code
from tests.agent.test_grievances import file
from tests.conftest import BASE_URL
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
#: Values for path parameters in the CSRF and header tests: well-formed, but naming nothing (so
#: no real record is touched).
PARAMETERS = {"lookup_id": "lk-does-not-exist", "ticket_id": "G-AAAAAA", "request_id": "none"}
#: Harmless form fields, so a forged post is refused for its token, not for its fields.
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


# -- what a permitted request must get ---------------------------------------------------------


def title_of(page: str) -> str:
    return f"<title>{page} · Rabta console</title>"


@dataclass(frozen=True)
class Page:
    """200 with the page itself: its own title, and the record it was asked for (`shows`)."""

    title: str
    shows: str = ""

    async def check(self, response: httpx.Response, client: httpx.AsyncClient, where) -> None:
        assert response.status_code == 200, where
        assert response.headers["content-type"].startswith("text/html"), where
        assert title_of(self.title) in response.text, where
        assert self.shows in response.text, where


@dataclass(frozen=True)
class Csv:
    """200 with the export itself: a CSV attachment named `rabta-<name>-…` and its header row."""

    name: str
    header: str

    async def check(self, response: httpx.Response, client: httpx.AsyncClient, where) -> None:
        assert response.status_code == 200, where
        assert response.headers["content-type"].startswith("text/csv"), where
        disposition = response.headers["content-disposition"]
        assert disposition.startswith(f'attachment; filename="rabta-{self.name}-'), where
        assert response.text.lstrip("\ufeff").splitlines()[0] == self.header, where


@dataclass(frozen=True)
class Done:
    """A form that did its work: 303 to `to` (a path, or a pattern of one), where the page
    (`title`) says so (`says`: the confirmation, or a pattern of it). `follow=False`: the target
    is not opened (the language switch, open to anyone, leads to pages that are not)."""

    to: str | re.Pattern[str]
    says: str | re.Pattern[str] = ""
    title: str = ""
    follow: bool = True

    async def check(self, response: httpx.Response, client: httpx.AsyncClient, where) -> None:
        assert response.status_code == 303, where
        location = response.headers["location"]
        if isinstance(self.to, str):
            assert location == self.to, (*where, location)
        else:
            assert self.to.fullmatch(location), (*where, location)
        if not self.follow:
            return
        shown = await client.get(location)
        assert shown.status_code == 200, (*where, location)
        assert title_of(self.title) in shown.text, (*where, location)
        # Nothing was refused on the way (a refused form also leads back to its page)...
        assert 'class="flash flash-error"' not in shown.text, (*where, location)
        # ...and the page confirms what was done (a search leads to its record's page, which
        # confirms nothing).
        if self.says:
            said = re.findall(r'<p class="flash flash-ok"[^>]*>([^<]*)</p>', shown.text)
            pattern = re.compile(re.escape(self.says)) if isinstance(self.says, str) else self.says
            assert any(pattern.fullmatch(line) for line in said), (*where, said)


Expected = Page | Csv | Done


@dataclass(frozen=True)
class Attempt:
    """One cell's request (`data` None: a GET; else a form, sent from the console's `page`) and
    what it must get where the role is allowed."""

    path: str
    data: dict[str, str] | None
    permitted: Expected
    page: str = ""


# -- the records each cell's request is about --------------------------------------------------


@dataclass
class Bench:
    """What the matrix's cells act on: each cell gets records of its own (a caller with her own
    CNIC and mobile, a grievance, an override request), so a permitted request meets a real
    record and does its work, and a refused one is refused for the role, not for a missing
    record."""

    db: Database
    settings: Settings
    access: CallerAccess
    staff: dict[str, int]
    admin: httpx.AsyncClient
    asker: httpx.AsyncClient  # bilal, an agent outside the matrix: his requests are decided
    callers: int = 0

    def owner(self, client: httpx.AsyncClient, role: Role | None) -> httpx.AsyncClient:
        """Who opens the records the request names: the client itself, or for a request
        without a session, the admin."""
        return client if role else self.admin

    async def caller(self) -> tuple[str, str]:
        """A new person in the registry with a mobile of her own: (CNIC, mobile)."""
        self.callers += 1
        cnic, mobile = f"35202{7000000 + self.callers:07d}2", f"+92300{7000000 + self.callers:07d}"
        async with self.db.transaction() as session:
            session.add(
                Person(
                    cnic=cnic,
                    household_id="HH-PB-0001",
                    full_name=f"Caller {self.callers}",
                    gender="F",
                    birth_date=dt.date(1985, 1, 1),
                    relation="daughter_in_law",
                    mobile=mobile,
                    cnic_expiry=dt.date(2032, 1, 1),
                )
            )
        return cnic, mobile

    async def lookup(self, client: httpx.AsyncClient) -> tuple[str, str, str]:
        """A new caller searched by `client`: (the lookup page, her CNIC, her mobile)."""
        cnic, mobile = await self.caller()
        return await open_lookup(client, cnic), cnic, mobile

    async def coded(self, client: httpx.AsyncClient) -> tuple[str, str]:
        """A lookup whose caller has been sent a code: (the lookup page, the code)."""
        page, _, mobile = await self.lookup(client)
        sent = await post_form(client, page, f"{page}/code", {})
        assert sent.status_code == 303, sent.text
        return page, await sent_code(self.db, mobile)

    async def verified(self, client: httpx.AsyncClient) -> str:
        """A lookup whose caller has read her code back: the record is open to `client`."""
        page, code = await self.coded(client)
        typed = await post_form(client, page, f"{page}/verify", {"code": code})
        assert typed.status_code == 303, typed.text
        return page

    async def override_request(self) -> str:
        """An agent's pending request to open a caller's record: its id."""
        page, _, _ = await self.lookup(self.asker)
        reason = {"reason": "caller lost her phone"}
        asked = await post_form(self.asker, page, f"{page}/override-request", reason)
        assert asked.status_code == 303, asked.text
        lookup = await self.access.get_lookup(page.rsplit("/", 1)[1], agent="bilal")
        assert lookup is not None and lookup.override_request_id
        return lookup.override_request_id

    async def grievance(self, *, days_ago: float = 0) -> str:
        return await file(self.db, self.settings, days_ago=days_ago)


def masked(cnic: str) -> str:
    return f"{cnic[:5]}-*******-{cnic[-1]}"


LOOKUP_PAGE = re.compile(r"/agent/callers/[A-Za-z0-9_-]{20,}")
GRIEVANCE_PAGE = re.compile(r"/agent/grievances/G-[A-Z0-9]{6}")
REASON = "security test"


async def on_language(bench: Bench, client, role) -> Attempt:
    return Attempt(
        "/agent/language?to=en&next=/agent/grievances",
        None,
        Done("/agent/grievances", follow=False),
    )


async def on_home(bench: Bench, client, role) -> Attempt:
    return Attempt("/agent", None, Page("Callers", 'action="/agent/callers"'))


async def on_search(bench: Bench, client, role) -> Attempt:
    cnic, _ = await bench.caller()
    return Attempt("/agent/callers", {"cnic": cnic}, Done(LOOKUP_PAGE, title="Caller"), "/agent")


async def on_caller(bench: Bench, client, role) -> Attempt:
    page, cnic, _ = await bench.lookup(bench.owner(client, role))
    return Attempt(page, None, Page("Caller", masked(cnic)))


async def on_code(bench: Bench, client, role) -> Attempt:
    page, _, _ = await bench.lookup(bench.owner(client, role))
    sent = re.compile(r"Code sent to \+92300\*{4}\d{3}\. Ask the caller to read it back\.")
    return Attempt(f"{page}/code", {}, Done(page, sent, "Caller"), page)


async def on_verify(bench: Bench, client, role) -> Attempt:
    page, code = await bench.coded(bench.owner(client, role))
    opened = "Caller verified. The record is open to you for 30 minutes."
    return Attempt(f"{page}/verify", {"code": code}, Done(page, opened, "Caller"), page)


async def on_override_request(bench: Bench, client, role) -> Attempt:
    page, _, _ = await bench.lookup(bench.owner(client, role))
    asked = "A supervisor has been asked. Reload this page after they approve."
    form = {"reason": REASON}
    return Attempt(f"{page}/override-request", form, Done(page, asked, "Caller"), page)


async def on_file_for_caller(bench: Bench, client, role) -> Attempt:
    page = await bench.verified(bench.owner(client, role))
    form = {"category": "payment_not_received", "description": REASON, "language": "ur_Latn"}
    filed = re.compile(
        r"Grievance G-[A-Z0-9]{6} filed\. The caller gets the ticket number by SMS\."
    )
    return Attempt(f"{page}/grievances", form, Done(GRIEVANCE_PAGE, filed, "Grievance"), page)


async def on_override(bench: Bench, client, role) -> Attempt:
    page, _, _ = await bench.lookup(bench.owner(client, role))
    opened = "Override recorded. The record is open to you for 30 minutes."
    return Attempt(f"{page}/override", {"reason": REASON}, Done(page, opened, "Caller"), page)


async def on_queue(bench: Bench, client, role) -> Attempt:
    return Attempt("/agent/grievances", None, Page("Grievances", 'href="/agent/grievances?view='))


async def on_grievance(bench: Bench, client, role) -> Attempt:
    ticket = await bench.grievance()
    return Attempt(f"/agent/grievances/{ticket}", None, Page("Grievance", ticket))


async def on_note(bench: Bench, client, role) -> Attempt:
    page = f"/agent/grievances/{await bench.grievance()}"
    form = {"note": REASON, "internal": "1"}
    return Attempt(f"{page}/notes", form, Done(page, "Internal note added.", "Grievance"), page)


async def on_status(bench: Bench, client, role) -> Attempt:
    # The change every role may make: an agent may only escalate, saying why.
    page = f"/agent/grievances/{await bench.grievance()}"
    form = {"to": "escalated", "note": REASON}
    return Attempt(f"{page}/status", form, Done(page, "Status changed.", "Grievance"), page)


async def on_assign(bench: Bench, client, role) -> Attempt:
    page = f"/agent/grievances/{await bench.grievance()}"
    form = {"agent_id": str(bench.staff["bilal"])}
    return Attempt(f"{page}/assign", form, Done(page, "Assigned to bilal.", "Grievance"), page)


async def on_escalate_overdue(bench: Bench, client, role) -> Attempt:
    await bench.grievance(days_ago=30)
    escalated = re.compile(r"[1-9]\d* overdue grievances escalated\.")
    target = "/agent/grievances?view=escalated"
    done = Done(target, escalated, "Grievances")
    return Attempt("/agent/grievances-escalate-overdue", {}, done, "/agent/grievances")


async def on_dashboard(bench: Bench, client, role) -> Attempt:
    return Attempt("/agent/dashboard", None, Page("Dashboard", "<svg"))


async def on_dashboard_csv(bench: Bench, client, role) -> Attempt:
    return Attempt("/agent/dashboard.csv", None, Csv("dashboard", '"section","key","day","value"'))


async def on_overrides(bench: Bench, client, role) -> Attempt:
    return Attempt("/agent/overrides", None, Page("Override requests"))


async def on_approve(bench: Bench, client, role) -> Attempt:
    path = f"/agent/overrides/{await bench.override_request()}/approve"
    approved = "Approved: bilal can open the record."
    done = Done("/agent/overrides", approved, "Override requests")
    return Attempt(path, {}, done, "/agent/overrides")


async def on_deny(bench: Bench, client, role) -> Attempt:
    path = f"/agent/overrides/{await bench.override_request()}/deny"
    refused = "Refused: bilal has been told."
    done = Done("/agent/overrides", refused, "Override requests")
    return Attempt(path, {}, done, "/agent/overrides")


async def on_audit(bench: Bench, client, role) -> Attempt:
    return Attempt("/agent/audit", None, Page("Audit log", 'href="/agent/audit.csv'))


async def on_audit_csv(bench: Bench, client, role) -> Attempt:
    header = '"at","actor","action","record_type","record_id","reason","client_ip"'
    return Attempt("/agent/audit.csv", None, Csv("audit", header))


Prepare = Callable[[Bench, httpx.AsyncClient, Role | None], Awaitable[Attempt]]

#: (method, path template) → the request of one cell, on records of its own. Signing in and out
#: change the session: the session tests below see to them.
CELLS: dict[tuple[str, str], Prepare] = {
    ("GET", "/agent/language"): on_language,
    ("GET", "/agent"): on_home,
    ("POST", "/agent/callers"): on_search,
    ("GET", "/agent/callers/{lookup_id}"): on_caller,
    ("POST", "/agent/callers/{lookup_id}/code"): on_code,
    ("POST", "/agent/callers/{lookup_id}/verify"): on_verify,
    ("POST", "/agent/callers/{lookup_id}/override-request"): on_override_request,
    ("POST", "/agent/callers/{lookup_id}/grievances"): on_file_for_caller,
    ("POST", "/agent/callers/{lookup_id}/override"): on_override,
    ("GET", "/agent/grievances"): on_queue,
    ("GET", "/agent/grievances/{ticket_id}"): on_grievance,
    ("POST", "/agent/grievances/{ticket_id}/notes"): on_note,
    ("POST", "/agent/grievances/{ticket_id}/status"): on_status,
    ("POST", "/agent/grievances/{ticket_id}/assign"): on_assign,
    ("POST", "/agent/grievances-escalate-overdue"): on_escalate_overdue,
    ("GET", "/agent/dashboard"): on_dashboard,
    ("GET", "/agent/dashboard.csv"): on_dashboard_csv,
    ("GET", "/agent/overrides"): on_overrides,
    ("POST", "/agent/overrides/{request_id}/approve"): on_approve,
    ("POST", "/agent/overrides/{request_id}/deny"): on_deny,
    ("GET", "/agent/audit"): on_audit,
    ("GET", "/agent/audit.csv"): on_audit_csv,
}
SESSION_ROUTES = {("GET", "/agent/login"), ("POST", "/agent/login"), ("POST", "/agent/logout")}


def test_every_route_but_signing_in_and_out_has_a_cell():
    assert set(CELLS) == set(ROUTES) - SESSION_ROUTES


#: What a refusal for the role says, by the least role of the page.
FOR_WHOM = {SUPERVISOR: "This page is for supervisors.", ADMIN: "This page is for admins."}


def check_refused(response: httpx.Response, attempt: Attempt, role, least, where) -> None:
    if role is ANONYMOUS:
        # Not signed in: to the login page, and back afterwards to the page asked for, or to the
        # page the form is on, saying the form was not sent (nothing was kept: no session).
        assert response.status_code == 303, where
        if attempt.data is not None:
            expected = "/agent/login?" + urlencode({"next": attempt.page, "unsaved": "1"})
        elif attempt.path != "/agent":
            expected = "/agent/login?" + urlencode({"next": attempt.path})
        else:
            expected = "/agent/login"
        assert response.headers["location"] == expected, (*where, response.headers["location"])
        return
    # Signed in, but the page is not for this role: the console's own 403 page, saying whom it
    # is for, still signed in.
    assert response.status_code == 403, where
    assert response.headers["content-type"].startswith("text/html"), where
    refusal = f'<p class="flash flash-error" role="alert">{FOR_WHOM[least]}</p>'
    assert refusal in response.text, where
    assert ">Sign out</button>" in response.text, where


async def test_every_route_by_every_role(new_client, staff, registry, settings, app):  # noqa: F811
    clients = await clients_by_role(new_client)
    bench = Bench(
        db=registry,
        settings=settings,
        access=CallerAccess(app.state.runtime.redis, settings),
        staff=staff,
        admin=clients[ADMIN],
        asker=await new_client("bilal"),
    )
    checked = allowed = refused = 0
    for (method, template), prepare in sorted(CELLS.items(), key=lambda c: c[0][1]):
        least = ROUTES[(method, template)]
        for role, client in clients.items():
            attempt = await prepare(bench, client, role)
            if attempt.data is None:
                response = await client.get(attempt.path)
            else:
                data = {**attempt.data, "csrf_token": await token_of(client, role)}
                # Sent from its page, as a browser sends it (same-origin Referer).
                referer = {"Referer": f"{BASE_URL}{attempt.page}"}
                response = await client.post(attempt.path, data=data, headers=referer)
            checked += 1
            where = (method, template, role and role.value, response.status_code)
            if RANK[role] >= RANK[least]:
                allowed += 1
                await attempt.permitted.check(response, client, where)
            else:
                refused += 1
                check_refused(response, attempt, role, least, where)
    figure(
        f"Console role matrix: {len(CELLS)} routes x 4 roles (anonymous, agent, supervisor, "
        f"admin) = {checked} requests, each on a record of its own: {allowed} permitted (each "
        f"its own page, or its redirect to a page confirming the change), {refused} refused "
        f"(403 naming whom the page is for, or 303 to the login page), 0 5xx"
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
