"""Shared fixtures: the real PostgreSQL and Redis when DATABASE_URL/REDIS_URL are set, else the
embedded defaults (a temporary SQLite file and the in-process Redis substitute)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, func, select, text

from api.db import Database
from api.migrate import upgrade_async
from api.registry.models import Base, Enrollment, Household, OutboundMessage, Payment, Person
from api.settings import Settings, get_settings
from bot.render import Renderer
from tests.faults.services import free_port

PAYLOADS = Path(__file__).parent / "payloads"

#: Every log record of the run is kept and scanned at the end for CNICs, phones and codes.
pytest_plugins = ["tests.security.logscan"]


#: The Redis bounds the suite runs under (the rate limiter ships 0.5 s, the app's client 1 s).
SUITE_REDIS_TIMEOUT = 5.0


@pytest.fixture(autouse=True)
def redis_calls_outlast_the_suites_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Redis bounds of the apps a test builds, well above the pauses of the suite's own
    process.

    A timeout counts the time the event loop is stalled, so a Redis that answered in a
    millisecond is "timed out" if the loop was blocked past the bound. This process carries a
    whole session's heap, and its full garbage collections stall the loop for up to 0.8 s on a
    slow host (a deployed worker freezes its start-up heap; api/main.py). One such pause during
    the rate limiter's 0.5 s bound degraded it to memory and sent a test about something else
    down the degraded path. Tests of a bound itself (tests/ratelimit/test_degradation.py) set
    the shipped figure back."""
    from api import redis
    from api.ratelimit import service

    monkeypatch.setattr(service, "CALL_TIMEOUT", SUITE_REDIS_TIMEOUT)
    monkeypatch.setattr(redis, "COMMAND_TIMEOUT", SUITE_REDIS_TIMEOUT)


@pytest.fixture(scope="session")
def renderer() -> Renderer:
    """The app's reply renderer, with the programmes' brand and names: what a reply should say."""
    from api.programmes import get_programmes

    programmes = get_programmes()
    return Renderer(brand=programmes.brand, programme_name=programmes.name)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'rabta-test.db'}"


@pytest.fixture(scope="session")
def redis_url() -> str | None:
    return os.environ.get("REDIS_URL") or None


@pytest.fixture
def settings(
    database_url: str, redis_url: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """Development settings on the test database, with the console outbox in a temp folder."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    if redis_url:
        monkeypatch.setenv("REDIS_URL", redis_url)
    else:
        monkeypatch.delenv("REDIS_URL", raising=False)
    for name in (
        "TWILIO_AUTH_TOKEN",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_FROM",
        "RABTA_ENV",
        "TELEGRAM_BOT_TOKEN",
        "TELEGRAM_WEBHOOK_SECRET",
        "REGISTRY_DATABASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RABTA_CONSOLE_OUTBOX", str(tmp_path / "outbox.jsonl"))
    # Tests deliver the outbox themselves, when they choose to.
    monkeypatch.setenv("RABTA_EMBEDDED_WORKER", "false")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture(scope="session")
async def migrated(database_url: str) -> AsyncIterator[str]:
    await upgrade_async(database_url)
    yield database_url


@pytest.fixture
async def db(migrated: str, settings: Settings) -> AsyncIterator[Database]:
    """A migrated database, emptied before each test."""
    database = Database.from_settings(settings)
    await truncate_all(database)
    try:
        yield database
    finally:
        await database.dispose()


async def truncate_all(database: Database) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    async with database.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(Base.metadata.sorted_tables):
                await conn.execute(delete(table))


@contextlib.asynccontextmanager
async def commit_trigger(
    db: Database, create: Sequence[str], drop: Sequence[str]
) -> AsyncIterator[None]:
    """A deferred constraint trigger that ends its own connection at COMMIT, as a database
    restarting under a commit does: made by `create` for the block, and gone (`drop`) before
    and after it. PostgreSQL only: on another database the test is skipped."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("needs PostgreSQL (a constraint trigger ends the connection at COMMIT)")
    async with db.engine.begin() as connection:
        for statement in (*drop, *create):
            await connection.exec_driver_sql(statement)
    try:
        yield
    finally:
        async with db.engine.begin() as connection:
            for statement in drop:
                await connection.exec_driver_sql(statement)


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[object]:
    """The Redis the app will use, flushed before each test."""
    from api.redis import connect_redis

    client = connect_redis(settings)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


# -- a small registry with one person of every kind ----------------------------------------

TODAY = dt.date(2026, 11, 23)

#: CNIC → what each test person is. Phones are their registered mobiles.
ELIGIBLE = "3520212345671"  # Punjab, male, PMT 18.5, Kafaalat + Taleemi Wazaif
ELIGIBLE_WIFE = "3520212345672"  # same household, female, shares the husband's phone
NOT_ELIGIBLE = "4210198765433"  # Sindh, PMT 45
UNDER_REVIEW = "1730155555552"  # KP, household under review
NOT_FOUND = "6110100000017"  # valid shape, not in the registry
ELIGIBLE_PHONE = "+923001234567"
NOT_ELIGIBLE_PHONE = "+923451112233"
UNDER_REVIEW_PHONE = "+923331234000"


@pytest.fixture
async def registry(db: Database) -> Database:
    """Three households: eligible (two persons), not eligible, under review."""
    await fill_registry(db)
    return db


async def fill_registry(db: Database) -> None:
    """Write the `registry` fixture's households, persons, enrollments and payments into `db`
    (for a test that makes its own database)."""
    async with db.transaction() as session:
        session.add_all(
            [
                Household(
                    household_id="HH-PB-0001",
                    pmt_score=18.5,
                    province="Punjab",
                    district="Lahore",
                    tehsil="Lahore City",
                    survey_date=dt.date(2021, 3, 4),
                    status="active",
                ),
                Household(
                    household_id="HH-SD-0002",
                    pmt_score=45.0,
                    province="Sindh",
                    district="Karachi Central",
                    tehsil="Gulberg",
                    survey_date=dt.date(2022, 6, 1),
                    status="active",
                ),
                Household(
                    household_id="HH-KP-0003",
                    pmt_score=12.0,
                    province="Khyber Pakhtunkhwa",
                    district="Peshawar",
                    tehsil="Peshawar City",
                    survey_date=dt.date(2023, 1, 9),
                    status="under_review",
                ),
            ]
        )
        await session.flush()
        session.add_all(
            [
                Person(
                    cnic=ELIGIBLE,
                    household_id="HH-PB-0001",
                    full_name="Muhammad Aslam",
                    gender="M",
                    birth_date=dt.date(1975, 5, 1),
                    relation="head",
                    mobile=ELIGIBLE_PHONE,
                    cnic_expiry=dt.date(2030, 1, 1),
                ),
                Person(
                    cnic=ELIGIBLE_WIFE,
                    household_id="HH-PB-0001",
                    full_name="Nasreen Bibi",
                    gender="F",
                    birth_date=dt.date(1980, 2, 2),
                    relation="spouse",
                    mobile=ELIGIBLE_PHONE,
                    cnic_expiry=dt.date(2031, 1, 1),
                ),
                Person(
                    cnic=NOT_ELIGIBLE,
                    household_id="HH-SD-0002",
                    full_name="Ghulam Rasool",
                    gender="M",
                    birth_date=dt.date(1968, 7, 7),
                    relation="head",
                    mobile=NOT_ELIGIBLE_PHONE,
                    cnic_expiry=dt.date(2029, 1, 1),
                ),
                Person(
                    cnic=UNDER_REVIEW,
                    household_id="HH-KP-0003",
                    full_name="Zarina Khan",
                    gender="F",
                    birth_date=dt.date(1990, 9, 9),
                    relation="head",
                    mobile=UNDER_REVIEW_PHONE,
                    cnic_expiry=dt.date(2032, 1, 1),
                ),
            ]
        )
        session.add_all(
            [
                Enrollment(
                    cnic=ELIGIBLE_WIFE,
                    programme="kafaalat",
                    status="active",
                    since=dt.date(2021, 7, 1),
                ),
                Enrollment(
                    cnic=ELIGIBLE_WIFE,
                    programme="taleemi_wazaif",
                    status="active",
                    since=dt.date(2022, 1, 1),
                ),
                Enrollment(
                    cnic=ELIGIBLE, programme="nashonuma", status="exited", since=dt.date(2021, 7, 1)
                ),
            ]
        )
        session.add_all(
            [
                Payment(
                    payment_id="PAY-0001",
                    cnic=ELIGIBLE_WIFE,
                    programme="kafaalat",
                    tranche="2026-Q3",
                    amount_pkr=13500,
                    window_start=dt.date(2026, 8, 1),
                    window_end=dt.date(2026, 8, 31),
                    mode="retailer",
                    place="HBL Konnect agent, Ichhra Bazaar",
                    status="collected",
                    reason=None,
                ),
                Payment(
                    payment_id="PAY-0002",
                    cnic=ELIGIBLE_WIFE,
                    programme="kafaalat",
                    tranche="2026-Q4",
                    amount_pkr=13500,
                    window_start=dt.date(2026, 11, 15),
                    window_end=dt.date(2026, 12, 15),
                    mode="campsite",
                    place="Govt Girls High School, Ichhra",
                    status="ready",
                    reason=None,
                ),
            ]
        )


# -- the application -------------------------------------------------------------------------


#: Where the tests' HTTP clients reach the app (the default PUBLIC_BASE_URL).
BASE_URL = "http://127.0.0.1:8000"


@contextlib.asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The ASGI app built on `settings`, with its lifespan running (its pools open)."""
    from api.main import create_app

    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


def app_client(app: FastAPI, *, peer: str | None = None) -> httpx.AsyncClient:
    """An HTTP client on `app`, in this process, at BASE_URL (to be used with `async with`);
    with `peer`, its requests come from that address (the peer address the server sees)."""
    transport = (
        httpx.ASGITransport(app=app)
        if peer is None
        else httpx.ASGITransport(app=app, client=(peer, 40000))
    )
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL)


@pytest.fixture
async def app(settings: Settings, db: Database, redis: object) -> AsyncIterator[FastAPI]:
    """The ASGI app with its lifespan running, on the test database and Redis."""
    async with running_app(settings) as application:
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(app) as http:
        yield http


def asgi_post_scope(path: str, content_type: bytes, length: int) -> dict:
    """The ASGI scope uvicorn gives the app for a POST of `length` bytes to `path`, for tests
    that drive the app directly (to time it, or to leave before the body is sent)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", content_type),
            (b"content-length", str(length).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


def production_env(database_url: str, redis_url: str, port: int) -> dict[str, str]:
    """The environment of a deployed `rabta` on the test database and Redis: production mode,
    none of the test run's own settings, messages to the console outbox (there is no Twilio
    account here: said outright, as production asks)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RABTA_", "TWILIO_", "TELEGRAM_", "PROMETHEUS_"))
    }
    env.update(
        RABTA_ENV="production",
        RABTA_SECRET_KEY="test-only-secret-key-0123456789abcdef",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        TWILIO_AUTH_TOKEN="test-twilio-auth-token-0123456789",
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        RABTA_EMBEDDED_WORKER="false",
        RABTA_OUTBOUND="console",
    )
    return env


@dataclass(frozen=True)
class Served:
    """A `rabta serve` running: where to ask it, and the pid of the process that started it."""

    url: str
    pid: int


@contextlib.contextmanager
def rabta_serve(database_url: str, redis_url: str, log: Path) -> Iterator[Served]:
    """`rabta serve --workers 2` as deployed, its output in `log`, once both workers have started;
    stopped (SIGTERM to its process group) on leaving."""
    port = free_port()
    rabta = Path(sys.executable).with_name("rabta")
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(rabta), "serve", "--port", str(port), "--workers", "2"],
            env=production_env(database_url, redis_url, port),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while log.read_text().count("Application startup complete") < 2:
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield Served(f"http://127.0.0.1:{port}", server.pid)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


@pytest.fixture
def answer_within_300_ms(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """RABTA_SURGE_ANSWER_WITHIN_MS at 300: a stalled answer is called off within the test."""
    from api import surge

    monkeypatch.setenv("RABTA_SURGE_ANSWER_WITHIN_MS", "300")
    surge.get_surge_settings.cache_clear()
    yield
    monkeypatch.undo()
    surge.get_surge_settings.cache_clear()


@pytest.fixture
def eligibility_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The CNICs the registry is read for by `check_eligibility` (a flow's look-up that was not
    answered from a household read ahead), in order."""
    from api.eligibility import service as eligibility_service

    reads: list[str] = []
    check = eligibility_service.check_eligibility

    async def counted(session, *, cnic, cutoff, full=False):
        reads.append(cnic.digits)
        return await check(session, cnic=cnic, cutoff=cutoff, full=full)

    monkeypatch.setattr(eligibility_service, "check_eligibility", counted)
    return reads


def load_payload(name: str) -> dict:
    """A provider payload saved from its documentation (tests/payloads), without `_about`."""
    data = json.loads((PAYLOADS / name).read_text(encoding="utf-8"))
    data.pop("_about", None)
    return data


def sms_form(body: str, sid: str, sender: str = ELIGIBLE_PHONE) -> dict[str, str]:
    """The form Twilio posts to the messaging webhook for an SMS (tests/payloads): `body` from
    `sender`, with the message id `sid` in each of the fields that carry it."""
    form = load_payload("twilio_sms_inbound.json")
    form.update(Body=body, MessageSid=sid, SmsMessageSid=sid, SmsSid=sid, From=sender)
    return form


def twiml_messages(xml: str | bytes) -> list[str]:
    """The text of each <Message> of a TwiML answer, in order."""
    return [m.text or "" for m in ElementTree.fromstring(xml).iter("Message")]


async def codes_sent(db: Database, to: str | None = None) -> int:
    """Verification codes queued for `to` (the eligible wife's registered mobile by default)."""
    async with db.sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(OutboundMessage)
            .where(OutboundMessage.kind == "otp", OutboundMessage.to == (to or ELIGIBLE_PHONE))
        )
    return int(count or 0)
