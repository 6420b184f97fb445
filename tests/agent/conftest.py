"""Console fixtures: staff of every role, signed-in HTTP clients, and reading forms' tokens."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from api.agent import passwords, service
from api.agent.schemas import Role
from api.db import Database
from api.registry.models import AuditEntry
from tests.conftest import app_client

PASSWORD = "correct horse battery staple"
STAFF = {"amina": Role.AGENT, "bilal": Role.AGENT, "sadia": Role.SUPERVISOR, "zara": Role.ADMIN}

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives a real Chromium with Playwright")


@pytest.fixture(autouse=True)
def no_background_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """No embedded outbox worker or escalation pass: the tests deliver and escalate themselves,
    so nothing changes under them (set before the `settings` fixture reads the environment)."""
    monkeypatch.setenv("RABTA_EMBEDDED_WORKER", "false")


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 at its production cost takes ~0.3 s a hash here: the tests use a cheap setting
    (test_auth checks the production one separately)."""
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


def csrf_token(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = _TOKEN.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


@pytest.fixture
async def staff(registry: Database) -> dict[str, int]:
    """Two agents, a supervisor and an admin (username → id), all with PASSWORD."""
    ids = {}
    async with registry.transaction() as session:
        for username, role in STAFF.items():
            agent = await service.create_agent(
                session, username=username, password=PASSWORD, role=role
            )
            ids[username] = agent.id
    return ids


Client = httpx.AsyncClient
MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def new_client(app) -> AsyncIterator[MakeClient]:
    """A factory of HTTP clients on the app, each with its own cookies (one per browser)."""
    clients: list[httpx.AsyncClient] = []

    async def make(username: str | None = None, password: str = PASSWORD) -> httpx.AsyncClient:
        client = app_client(app)
        clients.append(client)
        if username:
            response = await login(client, username, password)
            assert response.status_code == 303, response.text
        return client

    yield make
    for client in clients:
        await client.aclose()


async def login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    form = await client.get("/agent/login")
    return await client.post(
        "/agent/login",
        data={
            "username": username,
            "password": password,
            "csrf_token": csrf_token(form.text),
            "next": "/agent",
        },
    )


async def post_form(
    client: httpx.AsyncClient, page: str, action: str, data: dict[str, str]
) -> httpx.Response:
    """Open `page`, then post `data` to `action` with the page's CSRF token, as a browser would."""
    shown = await client.get(page)
    assert shown.status_code == 200, shown.text
    return await client.post(action, data={**data, "csrf_token": csrf_token(shown.text)})


async def audit_entries(db: Database, **where: str) -> list[AuditEntry]:
    async with db.sessions() as session:
        query = select(AuditEntry).order_by(AuditEntry.id)
        for name, value in where.items():
            query = query.where(getattr(AuditEntry, name) == value)
        return list(await session.scalars(query))
