"""CPU per request, in-process: the figure to compare two commits by on a noisy machine.

`make bench` measures requests/s under wrk, where the load generator, PostgreSQL and Redis share
the two cores with the app, and other tenants of the host move every figure by tens of per cent.
This drives the ASGI app directly (no server, no HTTP client: a scope, the body and a `send` that
keeps the status) with the same pre-built requests as the bench, one at a time, against the bench
database and Redis, and reports the process's own CPU time per request. Paths are run in
alternating rounds, so a noisy minute hits them alike, and the median round is reported.

    .venv/bin/python bench/cpu.py [--app rabta|baseline] [-n 1000]
        [--paths sms,sms-resends,ussd,eligibility]
    .venv/bin/python bench/cpu.py --profile var/bench/sms.prof   # cProfile, in CPU time

The loop is uvloop's, as under `rabta serve`.

For a figure that does not move at all, count instructions instead of seconds: callgrind's count
is the same from run to run whatever else the machine does; the per-request figure is the
difference between two runs divided by the difference in requests:

    valgrind --tool=callgrind --callgrind-out-file=/dev/null .venv/bin/python bench/cpu.py -n 200
    valgrind --tool=callgrind --callgrind-out-file=/dev/null .venv/bin/python bench/cpu.py -n 400

(`--rounds 1`, and read "Collected" from each.) Needs `make bench` to have seeded `rabta_bench`.
"""

# ruff: noqa: S311 - bench data

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # bench/run.py: the request builders and settings

PATHS = ("sms", "sms-resends", "ussd", "eligibility")


def asgi_request(raw: bytes) -> tuple[dict[str, Any], bytes]:
    """A raw HTTP/1.1 request (as bench/run.py writes them for wrk) as an ASGI scope and body."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    method, target, _ = lines[0].split(b" ", 2)
    path, _, query = target.partition(b"?")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(b": ")
        headers.append((name.lower(), value))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method.decode(),
        "scheme": "http",
        "path": path.decode(),
        "raw_path": path,
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", run.RABTA_PORT),
        "state": {},
    }
    return scope, body


async def call(app: Any, scope: dict[str, Any], body: bytes) -> int:
    """One request through the app; its status code."""
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)  # http.disconnect never comes while we wait for the reply
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(dict(scope, state={}), receive, send)
    return status


def requests_for(
    path: str, n: int, rng: random.Random, found: list[str], missing: list[str], key: str
) -> list[tuple[dict[str, Any], bytes]]:
    if path == "sms":
        raws = run.sms_requests(n, rng, found, missing)
    elif path == "sms-resends":
        # As the bench's "50% resends" scenario: half the messages resend a recent one.
        raws = run.sms_requests(n, rng, found, missing, resend_share=0.5)
    elif path == "ussd":
        # Whole sessions in order (dial, language, menu, CNIC): bench/run.py interleaves
        # sessions for wrk's connections; here they are taken one after the other.
        sessions = max(1, n // 4)
        raws = run.ussd_requests(sessions, rng, found, missing, 1)
        block = 2 * run.WRK_CONNECTIONS
        ordered = []
        for start in range(0, len(raws), 4 * block):
            for first in range(start, min(start + block, len(raws))):
                ordered.extend(raws[first + step * block] for step in range(4))
        raws = [raw for raw in ordered if raw][:n]
    else:
        raws = run.eligibility_requests(n, rng, found, missing, key)
    return [asgi_request(raw) for raw in raws]


async def measure(
    app: Any, paths: list[str], n: int, rounds: int, key: str
) -> dict[str, dict[str, Any]]:
    rng = random.Random()  # unseeded: MessageSids and senders must be new on every run
    found, missing = run.sample_cnics(500, 200)
    for path in paths:  # warm-up: imports, prepared statements, pools
        for scope, body in requests_for(path, 50, rng, found, missing, key):
            await call(app, scope, body)
    per_round: dict[str, list[float]] = {path: [] for path in paths}
    statuses: dict[str, dict[int, int]] = {path: {} for path in paths}
    for _ in range(rounds):
        for path in paths:
            batch = requests_for(path, n, rng, found, missing, key)
            started = time.process_time()
            for scope, body in batch:
                status = await call(app, scope, body)
                statuses[path][status] = statuses[path].get(status, 0) + 1
            per_round[path].append((time.process_time() - started) * 1000 / len(batch))
    return {
        path: {
            "cpu_ms_per_request": round(statistics.median(values), 3),
            "rounds": [round(v, 3) for v in values],
            "statuses": statuses[path],
        }
        for path, values in per_round.items()
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.update(
        run.rabta_env(RABTA_LIMIT_SENDER="1000000/hour", RABTA_LIMIT_CNIC="1000000/day")
    )
    paths = [p for p in args.paths.split(",") if p]
    app: Any
    if args.app == "baseline":
        os.environ["DATABASE_URL"] = run.DATABASE_URL
        from baseline import Baseline  # bench/baseline.py

        app = Baseline()
        await app.start()
        try:
            return await measure(app, paths, args.n, args.rounds, args.key)
        finally:
            await app.stop()
    from api.main import create_app
    from api.settings import get_settings

    get_settings.cache_clear()
    app = create_app(get_settings())
    async with app.router.lifespan_context(app):
        return await measure(app, paths, args.n, args.rounds, args.key)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", choices=("rabta", "baseline"), default="rabta")
    parser.add_argument("--paths", default="sms")
    parser.add_argument("-n", type=int, default=1000, help="requests per path per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--key", default="", help="a partner key (default: a new one)")
    parser.add_argument("--profile", type=Path, help="write a cProfile (CPU time) of the run here")
    arguments = parser.parse_args()
    if "eligibility" in arguments.paths and not arguments.key:
        arguments.key = run.create_partner_key()
    profiler = cProfile.Profile(time.process_time) if arguments.profile else None
    if profiler is not None:
        profiler.enable()
    result = uvloop.run(main(arguments))
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(arguments.profile)
    print(json.dumps(result))
