"""`/readyz` as a load balancer and an operator see it: it fails while PostgreSQL or Redis is
away or stalls, within the time a health check waits, without piling up connections to the
stalled service, and it is ready again as soon as the service is back."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from api.settings import Settings, get_settings
from tests.conftest import app_client, running_app


class Gate:
    """A TCP proxy in front of a real server: `open` forwards, `refuse` closes every
    connection at once (the server is down), `stall` accepts and says nothing (a partition)."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.mode = "open"
        self.accepted = 0
        self.open_now = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    def cut(self) -> None:
        """Every connection through the gate is closed (the server restarted)."""
        for writer in list(self._writers):
            writer.close()

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.mode == "refuse":
            writer.close()
            return
        self.open_now += 1
        self._writers.add(writer)
        try:
            if self.mode == "stall":
                await reader.read()  # until the client gives up and closes
                return
            up_reader, up_writer = await asyncio.open_connection(*self.target)
            self._writers.add(up_writer)
            pumps = [
                asyncio.create_task(self._pump(reader, up_writer)),
                asyncio.create_task(self._pump(up_reader, writer)),
            ]
            self._tasks.update(pumps)
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for pump in pumps:
                pump.cancel()
            up_writer.close()
            self._writers.discard(up_writer)
        except (ConnectionError, OSError):
            pass
        finally:
            self.open_now -= 1
            self._writers.discard(writer)
            writer.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


@contextlib.asynccontextmanager
async def gated(url: str) -> AsyncIterator[tuple[Gate, str]]:
    parts = urlsplit(url)
    gate = Gate(parts.hostname or "127.0.0.1", parts.port or 0)
    port = await gate.start()
    try:
        yield gate, _through(url, port)
    finally:
        await gate.close()


@pytest.fixture
async def gates(settings: Settings, monkeypatch: pytest.MonkeyPatch):
    if not settings.database_url.startswith("postgresql") or not settings.redis_url:
        pytest.skip("needs PostgreSQL and Redis to stand between")
    async with gated(settings.database_url) as (db_gate, db_url):
        async with gated(settings.redis_url) as (redis_gate, redis_url):
            monkeypatch.setenv("DATABASE_URL", db_url)
            monkeypatch.setenv("REDIS_URL", redis_url)
            get_settings.cache_clear()
            yield db_gate, redis_gate, get_settings()


async def _ready(http) -> tuple[int, dict, float]:
    started = time.monotonic()
    response = await http.get("/readyz")
    return response.status_code, response.json()["checks"], time.monotonic() - started


@pytest.mark.parametrize("which", ["database", "redis"])
@pytest.mark.parametrize("how", ["refuse", "stall"])
async def test_readyz_fails_while_a_service_is_away_and_recovers(gates, which, how):
    db_gate, redis_gate, settings = gates
    gate = db_gate if which == "database" else redis_gate
    async with running_app(settings) as app, app_client(app) as http:
        status, checks, _ = await _ready(http)
        assert status == 200, checks
        gate.mode = how
        gate.cut()
        for _ in range(3):
            status, checks, took = await _ready(http)
            assert status == 503 and checks[which] == "unreachable", checks
            # A health check waits 3 s (docker-compose.yml) for the answer.
            assert took < 3.0, took
        # Probes of a stalled service leave no connections hanging on it.
        await asyncio.sleep(0.2)
        assert gate.open_now <= 1, gate.open_now
        gate.mode = "open"
        status, checks, took = await _ready(http)
        assert status == 200, checks


async def test_readyz_is_ready_at_once_after_a_restart(gates):
    """PostgreSQL restarted (a failover, an upgrade) leaves the pool's connections dead: the
    first probe after it must not call a database that answers "unreachable" (an alarm, a
    replica taken out) because it tried an old connection."""
    db_gate, redis_gate, settings = gates
    async with running_app(settings) as app, app_client(app) as http:
        for _ in range(3):  # the pool holds connections, as a replica in service does
            status, checks, _ = await _ready(http)
            assert status == 200, checks
        db_gate.cut()
        redis_gate.cut()
        await asyncio.sleep(0.1)
        status, checks, _ = await _ready(http)
        assert status == 200, checks
