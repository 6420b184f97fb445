"""Fault-suite fixtures: private Redis/PostgreSQL servers to kill, the app served over loopback
HTTP by uvicorn, and a bounded load generator that records every answer."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
import uvicorn

from api.settings import Settings, get_settings
from tests.faults.services import PrivateCluster, PrivateRedis, free_port, postgres_bin_dir


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    try:
        server = PrivateRedis()
    except FileNotFoundError as exc:
        pytest.skip(f"no private Redis for the fault suite: {exc}")
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def private_cluster() -> Iterator[PrivateCluster]:
    """One throw-away PostgreSQL cluster for the session (initdb costs a few seconds)."""
    if postgres_bin_dir() is None:
        pytest.skip("PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb) are missing")
    try:
        cluster = PrivateCluster()
    except FileNotFoundError as exc:
        pytest.skip(f"no private PostgreSQL for the fault suite: {exc}")
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def fault_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Settings]:
    """Settings for a fault test: the test fixtures' environment, plus overrides.

    Loopback load comes from one address and asks about a few CNICs, so the per-IP REST limit
    and the per-CNIC one are lifted; everything else keeps its production default.
    """

    def make(**env: str | None) -> Settings:
        monkeypatch.setenv("RABTA_LIMIT_IP", "100000/minute")
        # The traffic looks up a few CNICs again and again, over REST too.
        monkeypatch.setenv("RABTA_LIMIT_CNIC", "100000/day")
        for name, value in env.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        return get_settings()

    return make


@dataclass
class Served:
    """The app behind uvicorn on a loopback port."""

    app: object
    url: str


@contextlib.asynccontextmanager
async def serve_app(settings: Settings) -> AsyncIterator[Served]:
    """Run `create_app(settings)` under uvicorn on 127.0.0.1 (a free port) in this event loop."""
    from api.main import create_app

    app = create_app(settings)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="on", log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 20
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped before it started")
        if time.monotonic() > deadline:
            raise TimeoutError("uvicorn did not start")
        await asyncio.sleep(0.02)
    try:
        yield Served(app=app, url=f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=30)


@dataclass
class Result:
    """One request's outcome."""

    at: float
    kind: str
    status: int
    elapsed: float
    body: str = ""
    key: str = ""


@dataclass
class LoadRecord:
    results: list[Result] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def of(self, kind: str) -> list[Result]:
        return [r for r in self.results if r.kind == kind]

    def server_errors(self, kind: str | None = None) -> list[Result]:
        return [r for r in self.results if r.status >= 500 and kind in (None, r.kind)]

    def statuses(self, kind: str | None = None) -> Counter[int]:
        return Counter(r.status for r in self.results if kind in (None, r.kind))

    def rate(self) -> float:
        if len(self.results) < 2:
            return 0.0
        span = max(r.at for r in self.results) - min(r.at for r in self.results)
        return len(self.results) / span if span > 0 else 0.0


Request = Callable[[httpx.AsyncClient, int], Awaitable[Result]]


async def run_load(
    base_url: str,
    make_request: Request,
    *,
    total: int,
    rate: float,
    concurrency: int,
    deadline: float,
    stop: asyncio.Event | None = None,
    record: LoadRecord | None = None,
) -> LoadRecord:
    """Send at most `total` requests at up to `rate` per second (at most `concurrency` at once)
    to `base_url`, on loopback only, for at most `deadline` seconds or until `stop` is set.
    Never unbounded: requests that would start after either are not sent. Answers go into
    `record` as they come (a scenario may watch it), a new one by default."""
    assert base_url.startswith("http://127.0.0.1:"), "load goes to loopback only"
    record = record if record is not None else LoadRecord()
    started = time.monotonic()
    numbers = iter(range(total))
    # Idle connections are dropped before uvicorn's 5 s keep-alive closes them: with both at 5 s,
    # a request could go out on a connection the server was closing (a ReadError, not a fault).
    limits = httpx.Limits(
        max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=2.0
    )
    timeout = httpx.Timeout(15.0)

    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as http:

        async def worker() -> None:
            for i in numbers:
                due = started + i / rate
                now = time.monotonic()
                if max(now, due) - started > deadline or (stop is not None and stop.is_set()):
                    return
                if due > now:
                    await asyncio.sleep(due - now)
                try:
                    record.results.append(await make_request(http, i))
                except httpx.HTTPError as exc:
                    record.errors.append(f"{i}: {type(exc).__name__}: {exc}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return record


async def timed(
    http: httpx.AsyncClient, kind: str, method: str, url: str, key: str = "", **kwargs: object
) -> Result:
    """One request, timed, as a Result."""
    at = time.monotonic()
    response = await http.request(method, url, **kwargs)  # type: ignore[arg-type]
    return Result(
        at=at,
        kind=kind,
        status=response.status_code,
        elapsed=time.monotonic() - at,
        body=response.text,
        key=key,
    )
