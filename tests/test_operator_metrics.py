"""What an operator scrapes and runs during an incident: `/metrics` adds up every worker of
`rabta serve`, `rabta worker` can be scraped, and `rabta held stats` counts what is kept in
Redis while the database is away."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import app_client, production_env, rabta_serve, running_app
from tests.faults.services import free_port


def _healthz_count(text: str) -> float:
    found = re.search(
        r'^rabta_http_requests_total\{method="GET",route="/healthz",status="200"\} (\S+)$',
        text,
        re.M,
    )
    return float(found.group(1)) if found else 0.0


def test_metrics_of_rabta_serve_add_up_every_worker(migrated, redis_url, tmp_path):
    """`rabta serve --workers 2` without PROMETHEUS_MULTIPROC_DIR: every scrape counts every
    request, whichever worker answers it (each worker's own count, alternating, looked to
    Prometheus like counter resets)."""
    if not migrated.startswith("postgresql") or not redis_url:
        pytest.skip("production mode needs PostgreSQL and Redis")
    log = tmp_path / "serve.log"
    with rabta_serve(migrated, redis_url, log) as server:
        for _ in range(20):
            assert httpx.get(f"{server.url}/healthz").status_code == 200
        seen = [_healthz_count(httpx.get(f"{server.url}/metrics").text) for _ in range(8)]
        answered_by = {
            line.split('"pid": ')[1].split(",")[0]
            for line in log.read_text().splitlines()
            if "GET /healthz" in line or "GET /metrics" in line
        }
    assert len(answered_by) == 2, "both workers should have answered something"
    assert seen == [20.0] * 8, seen


def test_held_stats_counts_what_redis_keeps_while_the_database_is_away(
    settings, redis_url, monkeypatch
):
    """The database stopped: SMS are kept in Redis (`rabta:held:spill`), and `rabta held stats`
    says how many before it reports the database unreachable (it used to try the database
    first and say nothing else)."""
    if not redis_url:
        pytest.skip("the spill is kept in Redis")
    from redis import Redis
    from typer.testing import CliRunner

    from api.cli import app
    from api.held import EARLIER_SPILL_KEY, SPILL_KEY, UNOPENED_KEY

    redis = Redis.from_url(redis_url)
    redis.delete(SPILL_KEY, EARLIER_SPILL_KEY, UNOPENED_KEY)
    redis.rpush(SPILL_KEY, "{}", "{}", "{}")
    # Kept in clear by the release before sealing, still to be moved; and two set aside as
    # not opening under this secret key, which a worker with the earlier key takes in.
    redis.rpush(EARLIER_SPILL_KEY, "{}")
    redis.rpush(UNOPENED_KEY, "{}", "{}")
    try:
        # A PostgreSQL that is not there: nothing listens on this port.
        monkeypatch.setenv(
            "DATABASE_URL", f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/rabta"
        )
        from api.settings import get_settings

        get_settings.cache_clear()
        result = CliRunner().invoke(app, ["held", "stats"])
    finally:
        redis.delete(SPILL_KEY, EARLIER_SPILL_KEY, UNOPENED_KEY)
        redis.close()
    # The database's absence is still reported (`rabta` prints it as one line and exits 1).
    assert isinstance(result.exception, OSError), result.exception
    assert "kept in Redis while the database was away: 4" in result.output, result.output
    assert "sealed under another secret key, set aside: 2" in result.output, result.output


def _sample(text: str, name: str, channel: str) -> float:
    found = re.search(rf'^{name}\{{channel="{channel}"\}} (\S+)$', text, re.M)
    assert found, text
    return float(found.group(1))


async def test_metrics_show_an_outbox_no_worker_delivers(settings, db):
    """`rabta worker` not running: the API's /metrics shows the outbox's backlog and how
    overdue it is (nothing did before: the outbox's counters live in the worker's process)."""
    import datetime as dt

    from sqlalchemy import update

    from api.outbox.service import PRIORITY_OTP, enqueue
    from api.registry.models import OutboundMessage

    async with db.sessions() as session, session.begin():
        for to in ("+923001110001", "+923001110002"):
            await enqueue(
                session, channel="sms", to=to, body="x", kind="otp", priority=PRIORITY_OTP
            )
        await session.execute(
            update(OutboundMessage).values(
                next_attempt_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
            )
        )
    # No embedded worker: nothing delivers, as when `rabta worker` is down.
    no_worker = settings.model_copy(update={"embedded_worker": False})
    async with running_app(no_worker) as application, app_client(application) as http:
        text = (await http.get("/metrics")).text
    assert _sample(text, "rabta_outbox_waiting", "sms") == 2
    assert _sample(text, "rabta_outbox_due", "sms") == 2
    assert _sample(text, "rabta_outbox_oldest_due_seconds", "sms") >= 600
    assert _sample(text, "rabta_outbox_due", "telegram") == 0
    assert "+92300" not in text


async def test_rabta_worker_serves_its_own_metrics(settings, db, redis_url, tmp_path):
    """`rabta worker --metrics-port P`: what the worker counts (sent, retried, failed by
    channel; a rotated Twilio token shows as `retried` with nothing `sent`) can be scraped.
    It counted them before too, but in a process nothing could scrape."""
    import asyncio

    from api.outbox.service import PRIORITY_OTP, enqueue

    if not settings.database_url.startswith("postgresql") or not redis_url:
        pytest.skip("production mode needs PostgreSQL and Redis")
    async with db.sessions() as session, session.begin():
        await enqueue(
            session, channel="sms", to="+923001110003", body="x", kind="otp", priority=PRIORITY_OTP
        )
    port = free_port()
    env = production_env(settings.database_url, redis_url, port)
    env["RABTA_CONSOLE_OUTBOX"] = str(tmp_path / "outbox.jsonl")
    rabta = Path(sys.executable).with_name("rabta")
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [str(rabta), "worker", "--metrics-port", str(port), "--poll-interval", "0.2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    sent = None
    try:
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient() as http:
            while time.monotonic() < deadline:
                assert worker.poll() is None, log.read_text()
                try:
                    text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                except httpx.TransportError:
                    await asyncio.sleep(0.2)
                    continue
                sent = re.search(
                    r'^rabta_outbox_messages_total\{channel="sms",kind="otp",outcome="sent"\} '
                    r"(\S+)$",
                    text,
                    re.M,
                )
                if sent:
                    break
                await asyncio.sleep(0.2)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    assert sent and float(sent.group(1)) == 1.0, log.read_text()


async def test_outbox_stats_say_why_messages_wait(settings, db):
    """Twilio answering 500s, a rotated token: messages wait, and `rabta outbox stats` gives
    the latest reason beside the count (it gave only the count; the reason was in the rows)."""
    import asyncio

    from typer.testing import CliRunner

    from api.cli import app
    from api.outbox.service import PRIORITY_OTP, deliver_due, enqueue

    async with db.sessions() as session, session.begin():
        await enqueue(
            session, channel="sms", to="+923001110004", body="x", kind="otp", priority=PRIORITY_OTP
        )
    # A worker that cannot send on the channel keeps the message, with the reason.
    await deliver_due(db, {}, worker_id="test")
    # The command runs its own event loop: in a thread, as from a shell.
    result = await asyncio.to_thread(
        CliRunner(env={"COLUMNS": "200"}).invoke, app, ["outbox", "stats"]
    )
    assert result.exit_code == 0, result.output
    assert "no sender configured for sms" in result.output, result.output


async def test_requests_the_gate_refuses_are_counted_with_their_503(
    settings, db, redis, monkeypatch
):
    """A surge: the requests the load-shedding gate refuses are in
    `rabta_http_requests_total{status="503"}` under their route, so the share of 503s the
    deployment guide alerts on is there (they were counted nowhere but the shed counter)."""
    from prometheus_client import REGISTRY

    from api import surge

    monkeypatch.setenv("RABTA_SURGE_MAX_IN_FLIGHT", "1")
    monkeypatch.setenv("RABTA_SURGE_MAX_QUEUE", "0")
    surge.get_surge_settings.cache_clear()
    refused = [
        ("GET", "/v1/eligibility/3520212345671", "/v1/*"),
        ("POST", "/webhooks/ussd", "/webhooks/ussd"),
    ]

    def count(method: str, route: str, status: str) -> float:
        labels = {"method": method, "route": route, "status": status}
        return REGISTRY.get_sample_value("rabta_http_requests_total", labels) or 0.0

    # A refused USSD hit gets its busy screen, a 200: counted under its route as such.
    before = [count(m, route, s) for m, _, route in refused for s in ("503", "200")]
    try:
        no_worker = settings.model_copy(update={"embedded_worker": False})
        async with running_app(no_worker) as application:
            gate = application.state.held.gate
            gate.in_flight = 1  # as if one request were running: the next is refused
            async with app_client(application) as http:
                statuses = [
                    (await http.request(method, path)).status_code for method, path, _ in refused
                ]
            gate.in_flight = 0
    finally:
        surge.get_surge_settings.cache_clear()
    assert statuses == [503, 200]
    after = [count(m, route, s) for m, _, route in refused for s in ("503", "200")]
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 0, 0, 1]


async def test_a_partner_over_its_quota_is_named_in_the_metrics(client, db):
    """A partner hammering the API: `rabta_partner_requests_total{partner,outcome}` says which
    one, and how many of its calls its quota refused (the limiter's own counter says only
    `scope="partner"`, and no log line names it)."""
    from prometheus_client import REGISTRY

    from api.partners import create_partner

    async with db.sessions() as session, session.begin():
        key = await create_partner(session, name="Hammering portal", quota="3/minute")

    def count(outcome: str) -> float:
        labels = {"partner": "Hammering portal", "outcome": outcome}
        return REGISTRY.get_sample_value("rabta_partner_requests_total", labels) or 0.0

    before = count("allowed"), count("limited")
    statuses = [
        (await client.get("/v1/eligibility/not-a-cnic", headers={"X-API-Key": key})).status_code
        for _ in range(5)
    ]
    assert statuses[-1] == 429, statuses
    assert (count("allowed") - before[0], count("limited") - before[1]) == (3, 2)


async def test_a_full_disk_under_the_console_outbox_is_named(db):
    """The console outbox's disk is full: the message waits, and its error (what `rabta outbox
    stats` shows) says so, not only `OSError`."""
    from sqlalchemy import select

    from api.outbox.senders import ConsoleSender
    from api.outbox.service import PRIORITY_OTP, deliver_due, enqueue
    from api.registry.models import OutboundMessage

    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full, which answers every write with ENOSPC")
    async with db.sessions() as session, session.begin():
        await enqueue(
            session, channel="sms", to="+923001110005", body="x", kind="otp", priority=PRIORITY_OTP
        )
    report = await deliver_due(db, {"sms": ConsoleSender(Path("/dev/full"))}, worker_id="test")
    assert report.retried == 1
    async with db.sessions() as session:
        error = (await session.execute(select(OutboundMessage.error))).scalar_one()
    assert error == "sender error: OSError: No space left on device"


async def test_every_line_logged_for_a_request_carries_its_id(client, caplog):
    """An operator following one message through the log: each line logged while answering a
    request carries its id (the caller's `X-Request-ID`, else a fresh one), which the response
    returns too; there was nothing to tie a reply's line to its access line."""
    import json
    import logging

    from api.logs import JsonFormatter

    caplog.set_level(logging.INFO)
    sms = {"MessageSid": "SMreqid1", "From": "+923001110006", "To": "+15550001111"}
    given = await client.post(
        "/webhooks/twilio/messaging",
        data={**sms, "Body": "HELP"},
        headers={"X-Request-ID": "lb-7f3a9c2e01"},
    )
    fresh = await client.post(
        "/webhooks/twilio/messaging",
        data={**sms, "MessageSid": "SMreqid2", "From": "+923001110007", "Body": "HELP"},
    )
    assert given.headers["x-request-id"] == "lb-7f3a9c2e01"
    assert re.fullmatch(r"[0-9a-f]{16}", fresh.headers["x-request-id"])
    replies = [r for r in caplog.records if r.getMessage().startswith("sms reply")]
    assert [r.request_id for r in replies] == ["lb-7f3a9c2e01", fresh.headers["x-request-id"]]
    line = json.loads(JsonFormatter().format(replies[0]))
    assert line["request_id"] == "lb-7f3a9c2e01"
    # A header that is not an id (too long, or carrying anything else) is not echoed.
    odd = await client.post(
        "/webhooks/twilio/messaging",
        data={**sms, "MessageSid": "SMreqid3", "Body": "HELP"},
        headers={"X-Request-ID": "x\\" + "a" * 80},
    )
    assert re.fullmatch(r"[0-9a-f]{16}", odd.headers["x-request-id"])


def test_the_metrics_folder_rabta_serve_makes_is_in_memory(monkeypatch):
    """Every count is a write to a mapped file: on disk the kernel flushes them while requests
    wait, so the folder goes where compose puts its own, in memory (/dev/shm), when there is one."""
    from pathlib import Path

    from api.cli import _shared_metrics_folder

    # Set, then removed: undoing it removes what the folder's maker sets, for the tests after.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "unset")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    folder = _shared_metrics_folder(2)
    assert folder is not None
    try:
        if Path("/dev/shm").is_dir():
            assert Path(folder.name).parent == Path("/dev/shm")
        assert Path(folder.name).is_dir()
    finally:
        folder.cleanup()
    assert _shared_metrics_folder(1) is None


async def test_latency_buckets_reach_past_twilios_wait(client):
    """A request held behind a stalled database takes longer than 5 s: the histogram tells
    apart one answered before the message would be held (8 s), before Twilio gives up (15 s),
    and within 30 s (the buckets stopped at 5 s, where all of them looked alike)."""
    assert (await client.get("/healthz")).status_code == 200
    body = (await client.get("/metrics")).text
    bounds = re.findall(
        r'^rabta_http_request_seconds_bucket\{le="([^"]+)",route="/healthz"\}', body, re.M
    )
    assert bounds[-4:] == ["8.0", "15.0", "30.0", "+Inf"]
    # Each bound is a series per route and worker: a few, not dozens.
    assert len(bounds) <= 14


async def test_a_made_up_method_is_not_a_series_of_its_own(client):
    """Any token is a method to the HTTP parser: `BREW1`, `BREW2`, … each made a new
    `rabta_http_requests_total` series, without bound. Methods outside HTTP's usual ones are
    counted as `other`."""
    from prometheus_client import REGISTRY

    def count(method: str, status: str) -> float:
        labels = {"method": method, "route": "/healthz", "status": status}
        return REGISTRY.get_sample_value("rabta_http_requests_total", labels) or 0.0

    before = count("other", "405"), count("GET", "200")
    assert (await client.request("BREW1", "/healthz")).status_code == 405
    assert (await client.request("BREW2", "/healthz")).status_code == 405
    assert (await client.get("/healthz")).status_code == 200
    assert (count("other", "405") - before[0], count("GET", "200") - before[1]) == (2, 1)
    assert count("BREW1", "405") == 0
