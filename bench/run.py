"""`make bench`: Rabta against a bare-ASGI baseline: the same machine, I/O and load.

What it does, end to end (each step skipped when already done, so reruns are fast):

1. PostgreSQL database `rabta_bench` (createdb), migrated, seeded with `rabta registry seed
   --households N` (1,000,000 by default) unless it already holds N households.
2. Request files: signed Twilio SMS webhooks (the full Twilio field set, a fresh MessageSid each,
   random senders, CNICs sampled from the registry and CNICs that are not in it), USSD sessions
   (dial → language → main menu → eligibility → CNIC), GET /v1/eligibility with a partner key.
3. For 1 and 2 uvicorn workers: Rabta (`rabta serve`, RABTA_ENV=production with PostgreSQL,
   Redis and TWILIO_AUTH_TOKEN set, so signatures are checked) and bench/baseline.py under the
   same uvicorn, each driven by wrk (bench/requests.lua) at full speed; peak RSS per worker.
4. With 2 workers: the SMS maximum measured twice more (the highest of the three is Rabta's);
   Rabta at a constant 30 and 50 % of it, three times at 70 % (the median decides the target)
   and at 2× (open loop, bench/loadgen.py); the REST API with the default per-IP limit
   (429s); for contrast, 2× with load shedding off. With 1 worker: a py-spy profile of the
   SMS webhook.
5. The results table in docs/performance.md (between the `bench:begin`/`bench:end` markers) and
   the raw numbers in bench/results/latest.json.

    .venv/bin/python bench/run.py [--quick] [--duration 15] [--households 1000000]

Only loopback addresses are used; every server it starts, it stops. Redis database 14 is
flushed before each server start (nothing else uses it).
"""

# ruff: noqa: S311, S603, S607, S608 - a bench: fixed commands, our own SQL, seeded test data

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import datetime as dt
import hashlib
import hmac
import itertools
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from loadgen import HELD  # bench/ is on the path: this script's own folder

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
WORK = ROOT / "var" / "bench"
DOC = ROOT / "docs" / "performance.md"
RESULTS = ROOT / "bench" / "results" / "latest.json"
PROFILE_SVG = ROOT / "bench" / "profile.svg"
PROFILE_RAW = WORK / "profile.collapsed"  # raw stacks: large, not kept in the repository

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
DB_NAME = "rabta_bench"
DATABASE_URL = f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{DB_NAME}"
REDIS_URL = "redis://127.0.0.1:6379/14"
TOKEN = "bench-twilio-auth-token-0123456789"  # noqa: S105 - a bench-only signing key
SECRET_KEY = "bench-only-secret-key-0123456789abcdef"  # noqa: S105 - production mode needs one
RABTA_PORT, BASELINE_PORT = 8000, 8001
PUBLIC_BASE_URL = f"http://127.0.0.1:{RABTA_PORT}"  # both apps check signatures against it
SMS_PATH = "/webhooks/twilio/messaging"
USSD_PATH = "/webhooks/ussd"
WRK_THREADS, WRK_CONNECTIONS = 2, 64
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"

TWILIO_FIELDS = {
    "ToCountry": "PK",
    "ToState": "",
    "NumMedia": "0",
    "ToCity": "",
    "FromZip": "",
    "FromState": "",
    "SmsStatus": "received",
    "FromCity": "",
    "FromCountry": "PK",
    "To": "+15005550006",
    "MessagingServiceSid": "MG0123456789abcdef0123456789abcdef",
    "ToZip": "",
    "NumSegments": "1",
    "AccountSid": "AC0123456789abcdef0123456789abcdef",
    "ApiVersion": "2010-04-01",
}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


# -- database ------------------------------------------------------------------------------------


def psql(sql: str, db: str = DB_NAME) -> str:
    out = subprocess.run(
        ["psql", "-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_USER, "-d", db, "-Atc", sql],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def rabta_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RABTA_", "TWILIO_"))}
    env.update(
        # Production mode, as deployed: templates are not re-checked on disk for every reply,
        # HSTS and the other production headers are on, unsafe defaults are refused.
        RABTA_ENV="production",
        RABTA_SECRET_KEY=SECRET_KEY,
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        TWILIO_AUTH_TOKEN=TOKEN,
        PUBLIC_BASE_URL=PUBLIC_BASE_URL,
        RABTA_EMBEDDED_WORKER="false",  # production layout: `rabta worker` runs elsewhere
        # Replies to held messages go to a file: no Twilio account here, said outright, as
        # production asks.
        RABTA_OUTBOUND="console",
        RABTA_CONSOLE_OUTBOX=str(WORK / "outbox.jsonl"),
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("REGISTRY_DATABASE_URL", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(extra)
    return env


def prepare_database(households: int) -> dict[str, Any]:
    exists = psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'", db="postgres")
    if not exists:
        log(f"createdb {DB_NAME}")
        subprocess.run(
            ["createdb", "-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_USER, DB_NAME], check=True
        )
    subprocess.run([BIN / "rabta", "db", "upgrade"], env=rabta_env(), check=True, cwd=ROOT)
    count = int(psql("SELECT count(*) FROM households"))
    seeded_now = False
    seed_seconds = 0.0
    if count < households:
        log(f"seeding {households:,} households (the registry holds {count:,})")
        started = time.perf_counter()
        subprocess.run(
            [str(BIN / "rabta"), "registry", "seed", "--households", str(households), "--seed", "7"]
            + (["--replace"] if count else []),
            env=rabta_env(),
            check=True,
            cwd=ROOT,
        )
        seed_seconds = time.perf_counter() - started
        seeded_now = True
        psql("ANALYZE")
    else:
        log(f"registry already seeded: {count:,} households")
    # Every run starts from the registry alone: the messages, contacts and what hangs off them
    # that earlier runs left would otherwise grow the tables (and their indexes) run after run.
    psql("TRUNCATE inbound_messages, contacts, partners, held_messages, outbound_messages CASCADE")
    return {
        "households": int(psql("SELECT count(*) FROM households")),
        "persons": int(psql("SELECT count(*) FROM persons")),
        "size": psql(f"SELECT pg_size_pretty(pg_database_size('{DB_NAME}'))"),
        "seeded_now": seeded_now,
        "seed_seconds": round(seed_seconds, 1),
    }


def sample_cnics(found: int, not_found: int) -> tuple[list[str], list[str]]:
    rows = psql(f"SELECT cnic FROM persons TABLESAMPLE SYSTEM (2) LIMIT {found}").split()
    rng = random.Random(11)
    candidates = {f"{rng.randint(1, 7)}{rng.randrange(10**12):012d}" for _ in range(not_found)}
    listed = ",".join(f"'{c}'" for c in candidates)
    present = set(psql(f"SELECT cnic FROM persons WHERE cnic IN ({listed})").split())
    return rows, sorted(candidates - present)


def create_partner_key() -> str:
    async def create() -> str:
        os.environ.update(rabta_env())
        from api.db import Database
        from api.partners import create_partner
        from api.settings import get_settings

        get_settings.cache_clear()
        db = Database.from_settings(get_settings())
        try:
            async with db.transaction() as session:
                return await create_partner(
                    session, name=f"bench-{uuid.uuid4().hex[:12]}", quota="1000000000/hour"
                )
        finally:
            await db.dispose()

    return asyncio.run(create())


# -- request files -------------------------------------------------------------------------------


def twilio_signature(url: str, fields: dict[str, str]) -> str:
    payload = url + "".join(k + v for k, v in sorted(fields.items()))
    digest = hmac.new(TOKEN.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def raw_post(path: str, body: str, extra: dict[str, str], port: int = RABTA_PORT) -> bytes:
    data = body.encode()
    headers = {
        "Host": f"127.0.0.1:{port}",
        "Content-Type": "application/x-www-form-urlencoded",
        "Content-Length": str(len(data)),
        **extra,
    }
    head = f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + b"\r\n" + data


def raw_get(path: str, extra: dict[str, str]) -> bytes:
    headers = {"Host": f"127.0.0.1:{RABTA_PORT}", **extra}
    head = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + b"\r\n"


#: Mobile prefixes that phonenumbers accepts (Jazz, Zong, Ufone, Telenor), as the seed uses.
MOBILE_PREFIXES = (
    *(f"30{d}" for d in range(10)),
    *(f"31{d}" for d in range(9)),
    *(f"32{d}" for d in range(6)),
    *(f"33{d}" for d in range(8)),
    *(f"34{d}" for d in range(8)),
)


def phone(rng: random.Random) -> str:
    return f"+92{rng.choice(MOBILE_PREFIXES)}{rng.randrange(10**7):07d}"


def pick_cnic(rng: random.Random, found: list[str], missing: list[str]) -> str:
    return rng.choice(found) if rng.random() < 0.7 else rng.choice(missing)


def cnic_text(rng: random.Random, cnic: str) -> str:
    return cnic if rng.random() < 0.6 else f"{cnic[:5]}-{cnic[5:12]}-{cnic[12]}"


def sms_requests(
    n: int, rng: random.Random, found: list[str], missing: list[str], resend_share: float = 0.0
) -> list[bytes]:
    out: list[bytes] = []
    recent: collections.deque[tuple[str, str]] = collections.deque(maxlen=200)
    for _ in range(n):
        if recent and rng.random() < resend_share:
            sender, body = rng.choice(recent)  # an anxious resend: same phone, same text
        else:
            sender, body = phone(rng), cnic_text(rng, pick_cnic(rng, found, missing))
            recent.append((sender, body))
        sid = "SM" + uuid.UUID(int=rng.getrandbits(128)).hex
        fields = dict(
            TWILIO_FIELDS, MessageSid=sid, SmsSid=sid, SmsMessageSid=sid, From=sender, Body=body
        )
        signature = twilio_signature(PUBLIC_BASE_URL + SMS_PATH, fields)
        out.append(
            raw_post(
                SMS_PATH,
                urlencode(fields),
                {"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1"},
            )
        )
    return out


def ussd_requests(
    sessions: int, rng: random.Random, found: list[str], missing: list[str], threads: int
) -> list[bytes]:
    """Sessions of four hits; each thread's share is in blocks so a session's steps go out in
    order, one block (more requests than the thread has connections) apart."""
    block = 2 * WRK_CONNECTIONS // max(1, threads)
    per_thread: list[list[bytes]] = [[] for _ in range(threads)]
    for t in range(threads):
        for _ in range(0, sessions // threads, block):
            batch = [
                (
                    "ATUid_" + uuid.UUID(int=rng.getrandbits(128)).hex,
                    phone(rng),
                    pick_cnic(rng, found, missing),
                )
                for _ in range(block)
            ]
            for step in ("", "1", "1*1", None):
                for session_id, number, cnic in batch:
                    text = f"1*1*{cnic}" if step is None else step
                    fields = {
                        "sessionId": session_id,
                        "serviceCode": "*8171#",
                        "phoneNumber": number,
                        "networkCode": "41001",
                        "text": text,
                    }
                    per_thread[t].append(raw_post(USSD_PATH, urlencode(fields), {}))
    # Interleave so that wrk thread t (taking every threads-th request) gets per_thread[t].
    out: list[bytes] = []
    for i in range(max(len(p) for p in per_thread)):
        for t in range(threads):
            out.append(per_thread[t][i % len(per_thread[t])])
    return out


def eligibility_requests(
    n: int, rng: random.Random, found: list[str], missing: list[str], key: str | None
) -> list[bytes]:
    extra = {"X-API-Key": key} if key else {}
    return [raw_get(f"/v1/eligibility/{pick_cnic(rng, found, missing)}", extra) for _ in range(n)]


def write_requests(name: str, requests: list[bytes]) -> Path:
    path = WORK / f"{name}.req"
    path.write_bytes(b"\0".join(requests) + b"\0")
    return path


# -- servers -------------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def worker_pids(self) -> list[int]:
        import psutil

        root = psutil.Process(self.process.pid)
        children = [
            c
            for c in root.children(recursive=True)
            if "resource_tracker" not in " ".join(c.cmdline())
        ]
        spawned = [c.pid for c in children if "multiprocessing" in " ".join(c.cmdline())]
        return spawned or [root.pid]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def cache_hits(server: Server) -> float | None:
    """Reply-cache hits so far, from /metrics (one worker only: with several, each answers
    for itself unless PROMETHEUS_MULTIPROC_DIR is set)."""
    if server.name != "rabta" or len(server.worker_pids()) != 1:
        return None
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("rabta_surge_reply_cache_total{") and 'outcome="hit"' in line
    )


def flush_redis() -> None:
    subprocess.run(["redis-cli", "-n", "14", "FLUSHDB"], check=True, capture_output=True)


#: Every server a run starts keeps its own log (`var/bench/NN-<app>-w<workers>.log`, in the
#: order they start: the open-loop and overload runs' server is `06-rabta-w2.log`), to read after.
_SERVERS_STARTED = itertools.count(1)


def start(name: str, workers: int, **extra_env: str) -> Server:
    flush_redis()
    log_path = WORK / f"{next(_SERVERS_STARTED):02d}-{name}-w{workers}.log"
    if name == "baseline":
        port = BASELINE_PORT
        cmd = [
            str(BIN / "uvicorn"),
            "bench.baseline:app",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    else:
        port = RABTA_PORT
        cmd = [str(BIN / "rabta"), "serve", "--port", str(port), "--workers", str(workers)]
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=rabta_env(**extra_env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(name, port, process, log_path)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited at start; see {log_path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200 and len(server.worker_pids()) >= workers:
                    time.sleep(1.0)  # let every worker finish its start-up
                    return server
        except OSError:
            pass
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"{name} did not answer /healthz; see {log_path}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RssSampler:
    """Peak RSS of each worker process while a scenario runs, and the CPU time they used."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.cpu_start = sum(cpu_seconds(p) for p in pids)
        self.cpu_used = 0.0
        self.peak: dict[int, int] = dict.fromkeys(pids, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in self.pids:
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                match = re.search(r"VmRSS:\s+(\d+) kB", status)
                if match:
                    self.peak[pid] = max(self.peak[pid], int(match.group(1)) * 1024)
            self._stop.wait(0.25)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.cpu_used = sum(cpu_seconds(p) for p in self.pids) - self.cpu_start

    def cpu_ms(self, requests: int) -> float:
        """Worker CPU milliseconds per request: the cost, whatever else the machine runs."""
        return round(self.cpu_used * 1000 / requests, 2) if requests else 0.0

    def mb(self) -> list[float]:
        return [round(v / 2**20, 1) for v in self.peak.values()]


# -- load ----------------------------------------------------------------------------------------


def wrk(port: int, path: Path, duration: float, connections: int = WRK_CONNECTIONS) -> dict:
    cmd = [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "5s",
        "-s",
        str(ROOT / "bench" / "requests.lua"),
        f"http://127.0.0.1:{port}",
        "--",
        str(path),
        str(WRK_THREADS),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    data = json.loads(line[len("WRKJSON ") :])
    seconds = data["duration_us"] / 1e6
    statuses = {k: v for k, v in data["statuses"].items()}
    ok = sum(v for k, v in statuses.items() if k.startswith("2"))
    errors = sum(data["errors"][k] for k in ("connect", "read", "write", "timeout"))
    return {
        "tool": "wrk",
        "requests": data["requests"],
        "rps": round(data["requests"] / seconds, 1),
        "p50_ms": round(data["p50_us"] / 1000, 2),
        "p99_ms": round(data["p99_us"] / 1000, 2),
        "max_ms": round(data["max_us"] / 1000, 2),
        "statuses": statuses,
        "non_2xx": data["requests"] - ok if statuses else data["errors"]["status"],
        "errors": errors,
        "timeouts": data["errors"]["timeout"],
        "wrapped": data["wrapped"],
    }


def loadgen(port: int, path: Path, rate: float, duration: float) -> dict:
    cmd = [
        str(BIN / "python"),
        str(ROOT / "bench" / "loadgen.py"),
        "--url",
        f"http://127.0.0.1:{port}",
        "--file",
        str(path),
        "--rate",
        f"{rate:.1f}",
        "--duration",
        str(duration),
        "--connections",
        "256",
        "--timeout",
        "5",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("LOADJSON "))
    data = json.loads(line[len("LOADJSON ") :])
    ok = sum(v for k, v in data["statuses"].items() if k.startswith("2"))
    data.update(
        tool=f"loadgen {rate:.0f}/s",
        rps=data["achieved_rps"],
        non_2xx=data["completed"] - ok,
        errors=data["errors"] + data["timeouts"],
    )
    return data


@dataclass
class Bench:
    duration: float
    warmup: float
    found: list[str]
    missing: list[str]
    partner_key: str
    #: Not seeded: Rabta keeps every MessageSid and USSD hit it has answered (rabta_bench is
    #: reused), so ids must be new on every run or a rerun would measure the replay path.
    rng: random.Random = field(default_factory=random.Random)
    results: list[dict] = field(default_factory=list)

    def files(self, kind: str, n: int, **options: Any) -> Path:
        if kind == "sms":
            reqs = sms_requests(n, self.rng, self.found, self.missing, options.get("resend", 0.0))
        elif kind == "ussd":
            reqs = ussd_requests(n, self.rng, self.found, self.missing, WRK_THREADS)
        elif kind == "eligibility":
            reqs = eligibility_requests(n, self.rng, self.found, self.missing, options.get("key"))
        else:
            raise ValueError(kind)
        return write_requests(f"{kind}-{options.get('tag', 'x')}", reqs)

    def capacity(self, app: str) -> int:
        # Rabta: fresh requests for up to 1,500/s, so no MessageSid is sent twice (a replay
        # would take the cheap path); the baseline keeps no dedup, so repeating is harmless.
        return 20000 if app == "baseline" else int(1500 * self.duration) + 3000

    def scenario(self, server: Server, workers: int, name: str, kind: str, **options: Any) -> dict:
        warm = self.files(kind, 3000, tag="warm", **options)
        wrk(server.port, warm, self.warmup)
        load = self.files(kind, self.capacity(server.name), tag="load", **options)
        hits_before = cache_hits(server)
        with RssSampler(server.worker_pids()) as rss:
            result = wrk(server.port, load, self.duration)
        if hits_before is not None and options.get("resend"):
            hits = (cache_hits(server) or 0) - hits_before
            result["cache_hits"] = hits
            log(f"reply cache hits: {hits:,} of {result['requests']:,} messages")
        result.update(
            app=server.name,
            workers=workers,
            scenario=name,
            rss_mb=rss.mb(),
            cpu_ms=rss.cpu_ms(result["requests"]),
            load=load_average(),
        )
        log(
            f"{server.name} w{workers} {name}: {result['rps']}/s p50 {result['p50_ms']} ms "
            f"p99 {result['p99_ms']} ms non-2xx {result['non_2xx']} errors {result['errors']} "
            f"rss {result['rss_mb']} MB"
        )
        self.results.append(result)
        return result

    def open_loop(
        self, server: Server, workers: int, name: str, rate: float, duration: float
    ) -> dict:
        load = self.files("sms", int(rate * duration) + 1000, tag="open")
        # The same warm-up as the closed-loop runs: a fresh server opens its pool connections,
        # prepares its statements and loads templates and locale data on its first requests.
        loadgen(
            server.port,
            self.files("sms", int(rate * self.warmup) + 100, tag="warm"),
            rate,
            self.warmup,
        )
        with RssSampler(server.worker_pids()) as rss:
            result = loadgen(server.port, load, rate, duration)
        result.update(
            app=server.name,
            workers=workers,
            scenario=name,
            rss_mb=rss.mb(),
            cpu_ms=rss.cpu_ms(result["completed"]),
            load=load_average(),
        )
        log(
            f"{server.name} w{workers} {name} @ {rate:.0f}/s: {result['rps']}/s "
            f"p50 {result['p50_ms']} ms p99 {result['p99_ms']} ms statuses {result['statuses']} "
            f"timeouts {result['timeouts']} errors {result['errors']}"
        )
        self.results.append(result)
        return result

    def profile(self, server: Server, workers: int) -> dict[str, Any]:
        """py-spy on the SMS webhook under wrk: a flame graph and collapsed stacks."""
        pyspy = BIN / "py-spy"
        if not pyspy.exists():
            return {"skipped": "py-spy not installed"}
        pid = server.worker_pids()[0]
        window = max(5, int(self.duration * 0.6))
        load = self.files("sms", self.capacity(server.name) * 2, tag="profile")
        box: dict[str, dict] = {}
        runner = threading.Thread(
            target=lambda: box.setdefault("r", wrk(server.port, load, 2 * window + 4))
        )
        runner.start()
        time.sleep(2)
        common = ["--pid", str(pid), "--duration", str(window), "--rate", "200", "--nonblocking"]
        subprocess.run(
            [pyspy, "record", "-o", PROFILE_SVG, "-f", "flamegraph", *common],
            check=False,
            capture_output=True,
        )
        subprocess.run(
            [pyspy, "record", "-o", PROFILE_RAW, "-f", "raw", *common],
            check=False,
            capture_output=True,
        )
        if PROFILE_SVG.exists():  # its title is the command line: name no machine's paths
            PROFILE_SVG.write_text(PROFILE_SVG.read_text().replace(f"{ROOT}/", ""))
        runner.join()
        log(f"profile: {PROFILE_SVG.relative_to(ROOT)}, {PROFILE_RAW.relative_to(ROOT)}")
        return summarise_profile(PROFILE_RAW, window, 200)


def round_trips(key: str) -> dict[str, Any]:
    """bench/roundtrips.py in its own process (it patches asyncpg and redis-py to count)."""
    flush_redis()
    out = subprocess.run(
        [str(BIN / "python"), str(ROOT / "bench" / "roundtrips.py"), key],
        capture_output=True,
        text=True,
        env=rabta_env(),
        cwd=ROOT,
        check=False,
    ).stdout
    line = next((x for x in out.splitlines() if x.startswith("ROUNDTRIPS ")), None)
    if line is None:
        log("round trips: not measured (bench/roundtrips.py failed)")
        return {}
    data: dict[str, Any] = json.loads(line[len("ROUNDTRIPS ") :])
    sms = data["rabta"]["sms (new sender, registered CNIC)"]
    log(f"round trips per SMS: PostgreSQL {sms['pg']}, Redis {sms['redis']}")
    return data


# -- profile summary -----------------------------------------------------------------------------

COMPONENTS = (
    ("sqlalchemy", "SQLAlchemy (ORM, Core, pool)"),
    ("asyncpg", "asyncpg"),
    ("redis", "redis-py"),
    ("limits", "limits (rate limiter)"),
    ("jinja2", "Jinja2 (reply templates)"),
    ("babel", "Babel"),
    ("twilio", "twilio (signature, TwiML)"),
    ("fastapi", "FastAPI"),
    ("starlette", "Starlette"),
    ("pydantic", "pydantic"),
    ("uvicorn", "uvicorn (HTTP)"),
    ("httptools", "uvicorn (HTTP)"),
    ("prometheus_client", "prometheus-client"),
    ("multipart", "python-multipart (form parsing)"),
    ("logging", "logging"),
    ("(api/", "Rabta api/"),
    ("(bot/", "Rabta bot/"),
    ("asyncio", "asyncio / event loop"),
    ("uvloop", "asyncio / event loop"),
)


def component_of(frame: str) -> str:
    for needle, name in COMPONENTS:
        if needle in frame:
            return name
    return "other (stdlib, C code)"


def summarise_profile(path: Path, seconds: float, rate: int) -> dict[str, Any]:
    """Self time per component and inclusive time of Rabta's own functions, from py-spy raw."""
    if not path.exists():
        return {"skipped": "no profile"}
    self_by_component: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        leaf = frames[-1]
        self_by_component[component_of(leaf)] += count
        seen = set()
        for frame in frames:
            if (
                ("(api/" in frame or "(bot/" in frame)
                and "__call__" not in frame
                and "(api/cli.py" not in frame
                and frame not in seen
            ):
                seen.add(frame)
                inclusive[frame] += count
    if not total:
        return {"skipped": "empty profile"}
    return {
        "samples": total,
        # py-spy leaves out idle samples (the loop waiting in epoll): samples/expected is busy.
        "busy_share": round(total / (seconds * rate), 3),
        "self_by_component": [
            (name, round(n / total, 3)) for name, n in self_by_component.most_common(14)
        ],
        "rabta_inclusive": [(name, round(n / total, 3)) for name, n in inclusive.most_common(16)],
    }


# -- report --------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "memory": f"{mem_kb / 2**20:.1f} GiB",
        "kernel": platform.release(),
    }


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    out["postgresql"] = psql("SHOW server_version")
    info = subprocess.run(["redis-cli", "INFO", "server"], capture_output=True, text=True).stdout
    match = re.search(r"redis_version:(\S+)", info)
    out["redis-server"] = match.group(1) if match else "?"
    wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    out["wrk"] = (wrk_v.stdout + wrk_v.stderr).split()[1] if (wrk_v.stdout + wrk_v.stderr) else "?"
    for package in (
        "fastapi",
        "starlette",
        "uvicorn",
        "uvloop",
        "httptools",
        "sqlalchemy",
        "asyncpg",
        "redis",  # redis-py
        "limits",
        "jinja2",
        "twilio",
        "pydantic",
        "py-spy",
    ):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "-"
    return out


def _fmt_rss(values: list[float]) -> str:
    return " / ".join(f"{v:.0f}" for v in values) if values else "-"


def render_report(report: dict[str, Any]) -> str:
    results = report["results"]
    index = {(r["app"], r["workers"], r["scenario"]): r for r in results}
    lines = [
        f"Run {report['finished']} ({report['mode']}; {report['duration']:.0f} s per scenario "
        f"after {report['warmup']:.0f} s of warm-up; load average before/after: "
        f"{report['load_before']} / {report['load_after']}).",
        "",
        "### Throughput (wrk, closed loop: "
        f"{WRK_THREADS} threads, {WRK_CONNECTIONS} connections, 5 s timeout)",
        "",
        "| path | workers | app | requests/s | p50 ms | p99 ms | non-2xx | errors | "
        "CPU ms/req | RSS/worker MB | Rabta/baseline req/s | Rabta/baseline CPU/req |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if r["tool"] != "wrk":
            continue
        ratio = cost = ""
        if r["app"] == "rabta":
            base = index.get(("baseline", r["workers"], r["scenario"]))
            if base and base["rps"]:
                ratio = f"{r['rps'] / base['rps']:.2f}x"
            if base and base.get("cpu_ms"):
                cost = f"{r['cpu_ms'] / base['cpu_ms']:.1f}x"
        lines.append(
            f"| {r['scenario']} | {r['workers']} | {r['app']} | {r['rps']:,.0f} | "
            f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['non_2xx']:,} | {r['errors']:,} | "
            f"{r.get('cpu_ms', 0):.2f} | {_fmt_rss(r['rss_mb'])} | {ratio} | {cost} |"
        )
    lines += [
        "",
        "### Constant rate and overload (bench/loadgen.py, open loop, latency from the "
        "scheduled send time, 5 s timeout, ≤ 256 connections)",
        "",
        "| scenario | workers | target/s | achieved/s | p50 ms | p99 ms | p99 of replies ms | "
        "200 with a reply | 200 held | 503 | 429 | other non-2xx | timeouts + errors | "
        "p99 of 503s ms | server CPU ms/req | generator CPU ms/req | connections |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if r["tool"] == "wrk":
            continue
        statuses = r["statuses"]
        other = sum(v for k, v in statuses.items() if k not in ("200", HELD, "503", "429"))
        shed = r["by_status"].get("503", {})
        lines.append(
            f"| {r['scenario']} | {r['workers']} | {r['rate_target']:,.0f} | {r['rps']:,.0f} | "
            f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {replies_p99(r)} | "
            f"{statuses.get('200', 0):,} | {statuses.get(HELD, 0):,} | "
            f"{statuses.get('503', 0):,} | {statuses.get('429', 0):,} | {other:,} | "
            f"{r['timeouts'] + r['errors']:,} | {shed.get('p99_ms', '-')} | "
            f"{r.get('cpu_ms', 0):.2f} | {r.get('generator_cpu_ms_per_request', '-')} | "
            f"{r.get('peak_connections', '-')} |"
        )
    drained = [r for r in results if r.get("drain")]
    for r in drained:
        d = r["drain"]
        lines += [
            "",
            f"Held at the end of *{r['scenario']}*: {d['held']:,} messages (each answered `200` "
            "with an empty TwiML, to be answered by SMS); "
            + (
                f"all answered {d['seconds']:.1f} s after the surge ended"
                if d["left"] == 0
                else f"{d['left']:,} still held {d['seconds']:.0f} s after the surge ended"
            )
            + f"; {d['replies']:,} replies to held messages in the outbox, those of the "
            "scenarios before it included.",
        ]
    trips = report.get("round_trips") or {}
    if trips:
        lines += [
            "",
            "### Round trips per request (counted in-process: independent of the machine's load)",
            "",
            "| request | Rabta PostgreSQL | Rabta Redis | baseline PostgreSQL | baseline Redis |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, rabta in trips["rabta"].items():
            base = trips["baseline"].get(name, {})
            lines.append(
                f"| {name} | {rabta['pg']} | {rabta['redis']} | {base.get('pg', '-')} | "
                f"{base.get('redis', '-')} |"
            )
        sms = trips["rabta"].get("sms (new sender, registered CNIC)")
        if sms:
            lines += [
                "",
                "Rabta's SMS webhook, in order: "
                + ", ".join(f"`{s.split(': ', 1)[1]}`" for s in sms["statements"])
                + ".",
            ]
    lines += ["", "### Targets", ""]
    for target in report["targets"]:
        mark = "met" if target["met"] else ("not met" if target["met"] is False else "n/a")
        lines.append(f"- **{mark}**: {target['what']} — {target['measured']}")
    prof = report.get("profile") or {}
    if prof.get("samples"):
        lines += [
            "",
            f"### Where a worker's time goes (py-spy, SMS webhook, 1 worker, {prof['samples']:,} "
            f"samples, the worker busy {prof['busy_share']:.0%} of the time)",
            "",
            "| component (self time) | share |",
            "|---|---:|",
        ]
        lines += [f"| {name} | {share:.1%} |" for name, share in prof["self_by_component"]]
    m, v, d = report["machine"], report["versions"], report["database"]
    lines += [
        "",
        "### Machine and versions",
        "",
        f"- {m['nproc']} cores, {m['cpu']}, {m['memory']}, Linux {m['kernel']}; load generator "
        "on the same machine",
        f"- registry `{DB_NAME}`: {d['households']:,} households, {d['persons']:,} persons, "
        f"{d['size']} on disk"
        + (f" (seeded in this run in {d['seed_seconds']:.0f} s)" if d["seeded_now"] else ""),
        "- " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- bench wall time {report['wall_seconds'] / 60:.1f} min",
    ]
    return "\n".join(lines)


def replies_p99(result: dict) -> str:
    """The p99 of the requests answered with a reply (a held or refused one is not)."""
    return f"{replies_p99_ms(result):.1f}" if "200" in result["by_status"] else "-"


def drain_held(limit_seconds: float = 180.0) -> dict[str, Any]:
    """After a surge: how long the server takes to answer the messages it held (api/held.py)."""
    held = int(psql("SELECT count(*) FROM held_messages"))
    started = time.perf_counter()
    left = held
    while left and time.perf_counter() - started < limit_seconds:
        time.sleep(0.5)
        left = int(psql("SELECT count(*) FROM held_messages"))
    seconds = time.perf_counter() - started
    replies = int(psql("SELECT count(*) FROM outbound_messages WHERE dedup_key LIKE 'held:%'"))
    log(f"held messages: {held:,} at the end of the surge, {left:,} left after {seconds:.1f} s")
    return {"held": held, "left": left, "seconds": round(seconds, 1), "replies": replies}


def seconds_over(result: dict, limit_ms: float = 50.0) -> str:
    """How the open-loop run's tail is spread: its worst second, and how many of its seconds had
    a p99 over `limit_ms` (a queue shows in every second, a stall of the host in one or two)."""
    seconds = [s for s in result.get("seconds", []) if s["count"] >= 20]
    if not seconds:
        return ""
    worst = max(seconds, key=lambda s: s["p99_ms"])
    over = sum(1 for s in seconds if s["p99_ms"] > limit_ms)
    return (
        f" (its worst second's p99 {worst['p99_ms']:.1f} ms; {over} of {len(seconds)} seconds"
        f" with a p99 over {limit_ms:.0f} ms)"
    )


def cpu_against_max(run: dict, closed: dict | None) -> str:
    """How the workers' CPU per SMS in an open-loop run compares with the closed-loop run that
    set the maximum: when higher, "70 % of the maximum" asked more than 70 % of what the
    workers could give. Two things move it: the host (tens of per cent within minutes), and
    the rate itself, since a worker that is not kept busy wakes for fewer requests at a time
    and pays more for each (docs/performance.md, item 45)."""
    if not closed or not run.get("cpu_ms") or not closed.get("cpu_ms"):
        return ""
    return (
        f"; the workers' CPU per SMS {run['cpu_ms']:.2f} ms against {closed['cpu_ms']:.2f} ms "
        f"when the maximum was measured ({run['cpu_ms'] / closed['cpu_ms'] - 1:+.0%})"
    )


#: How many times Rabta's two-worker maximum and the 70 % target are measured: the highest
#: maximum is Rabta's, and the median 70 % run decides the target.
STEADY_PASSES = 3


def max_again(n: int) -> str:
    return f"sms, maximum measured again ({n})"


def steady_run(n: int) -> str:
    return "sms @ 70% of max" + (f" ({n})" if n > 1 else "")


def maxima(index: dict[tuple[str, int, str], dict]) -> list[dict]:
    """The two-worker closed-loop SMS runs that measured Rabta's maximum, in order."""
    names = ["sms", *(max_again(n) for n in range(2, 2 + STEADY_PASSES - 1))]
    return [r for name in names if (r := index.get(("rabta", 2, name)))]


def maximum_of(index: dict[tuple[str, int, str], dict]) -> dict | None:
    """The one with the highest rate: Rabta's maximum."""
    return max(maxima(index), key=lambda r: r["rps"], default=None)


def replies_p99_ms(result: dict) -> float:
    """The p99 of the replies: a message held or refused in a stall answers fast without
    answering, and must not bring the figure down (no reply at all counts as no answer)."""
    return float(result["by_status"].get("200", {}).get("p99_ms", 1e9))


def steady_target(index: dict[tuple[str, int, str], dict]) -> dict[str, Any] | None:
    """p99 ≤ 50 ms at 70 % of the maximum, read from the median of the runs (the slower of
    the two middle ones when they are even), none of them with a timeout."""
    runs = [r for n in range(1, 1 + STEADY_PASSES) if (r := index.get(("rabta", 2, steady_run(n))))]
    if not runs:
        return None
    median = sorted(runs, key=replies_p99_ms)[len(runs) // 2]
    top = maximum_of(index)
    described = [
        f"{'run ' + str(n) + ': ' if len(runs) > 1 else ''}p99 of replies "
        f"{replies_p99(run)} ms at {run['rps']:,.0f}/s "
        f"(of all responses {run['p99_ms']:.1f} ms; {run['statuses'].get(HELD, 0):,} held, "
        f"{run['statuses'].get('503', 0):,} refused)"
        + seconds_over(run)
        + cpu_against_max(run, top)
        for n, run in enumerate(runs, start=1)
    ]
    return {
        "what": "p99 ≤ 50 ms at 70 % of Rabta's maximum (SMS, 2 workers)",
        "met": replies_p99_ms(median) <= 50 and all(run["timeouts"] == 0 for run in runs),
        "measured": (
            f"the median of {len(runs)} runs {replies_p99(median)} ms at "
            f"{median['rate_target']:,.0f}/s asked, 70 % of the highest of the maxima "
            + ", ".join(f"{m['rps']:,.0f}" for m in maxima(index))
            + "/s; "
            if len(runs) > 1
            else ""
        )
        + "; ".join(described)
        + "".join(
            f"; at {share}%: p99 {point['p99_ms']:.1f} ms at {point['rps']:,.0f}/s"
            for share in (50, 30)
            if (point := index.get(("rabta", 2, f"sms @ {share}% of max")))
        ),
    }


def targets(results: list[dict]) -> list[dict[str, Any]]:
    index = {(r["app"], r["workers"], r["scenario"]): r for r in results}
    out: list[dict[str, Any]] = []
    for workers in (1, 2):
        # One measurement each, alike: not the highest of Rabta's three against the
        # baseline's one (the three maxima set the bar for the 70 % target only).
        rabta, base = index.get(("rabta", workers, "sms")), index.get(("baseline", workers, "sms"))
        if rabta and base:
            ratio = rabta["rps"] / base["rps"]
            out.append(
                {
                    "what": f"SMS webhook ≥ 0.6× baseline throughput ({workers} worker"
                    f"{'s' if workers > 1 else ''})",
                    "met": ratio >= 0.6,
                    "measured": f"{ratio:.2f}x ({rabta['rps']:,.0f} vs {base['rps']:,.0f}/s); "
                    f"by CPU per request {base['cpu_ms'] / max(rabta['cpu_ms'], 1e-9):.2f}x "
                    f"({rabta['cpu_ms']:.2f} vs {base['cpu_ms']:.2f} ms)",
                }
            )
    steady = steady_target(index)
    if steady:
        out.append(steady)
    over = index.get(("rabta", 2, "sms @ 2x max (shedding on)"))
    if over:
        bad = sum(v for k, v in over["statuses"].items() if k.startswith("5") and k != "503")
        shed = over["by_status"].get("503", {})
        out.append(
            {
                "what": "under 2× overload: fast 503/429 (or SMS held and answered after), "
                "no other 5xx, no timeouts",
                "met": bad == 0
                and over["timeouts"] == 0
                and over["errors"] == 0
                and over.get("drain", {}).get("left", 0) == 0,
                "measured": f"{over['statuses'].get('200', 0):,} answered, "
                f"{over['statuses'].get(HELD, 0):,} held "
                f"(p99 {over['by_status'].get(HELD, {}).get('p99_ms', '-')} ms"
                + (
                    f"; all answered {over['drain']['seconds']:.1f} s after the surge"
                    if over.get("drain", {}).get("left") == 0
                    else f"; {over['drain']['left']:,} never answered"
                    if over.get("drain")
                    else ""
                )
                + f"), {over['statuses'].get('503', 0):,} shed "
                f"(p99 {shed.get('p99_ms', '-')} ms), "
                f"{bad} other 5xx, {over['timeouts']} timeouts, {over['errors'] - over['timeouts']}"
                " socket errors",
            }
        )
    limited = index.get(("rabta", 2, "eligibility, default limits"))
    if limited:
        out.append(
            {
                "what": "rate-limited REST calls answer 429 fast (default 60/minute per IP)",
                "met": limited["statuses"].get("429", 0) > 0 and limited["errors"] == 0,
                "measured": f"{limited['statuses'].get('429', 0):,} × 429 at "
                f"{limited['rps']:,.0f}/s, p99 {limited['p99_ms']:.1f} ms",
            }
        )
    rss = [v for r in results if r["app"] == "rabta" for v in r["rss_mb"]]
    if rss:
        out.append(
            {
                "what": "RSS ≤ 200 MB per worker",
                "met": max(rss) <= 200,
                "measured": f"peak {max(rss):.0f} MB",
            }
        )
    return out


def write_doc(text: str) -> None:
    block = f"{BEGIN}\n{text}\n{END}"
    if DOC.exists():
        current = DOC.read_text()
        if BEGIN in current and END in current:
            head, _, rest = current.partition(BEGIN)
            _, _, tail = rest.partition(END)
            DOC.write_text(head + block + tail)
            return
        DOC.write_text(current.rstrip() + "\n\n## Results\n\n" + block + "\n")
        return
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text("# Performance\n\n## Results\n\n" + block + "\n")


# -- main ----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description="Rabta vs a bare-ASGI baseline.")
    parser.add_argument("--quick", action="store_true", help="A smoke run: short scenarios.")
    parser.add_argument("--duration", type=float, default=None, help="Seconds per scenario.")
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--no-doc", action="store_true", help="Print the table, write no doc.")
    args = parser.parse_args()
    duration = args.duration or (8.0 if args.quick else 12.0)
    warmup = 2.0 if args.quick else 3.0
    wall = time.perf_counter()
    for tool in ("wrk", "psql", "createdb", "redis-cli"):
        if shutil.which(tool) is None:
            print(f"bench: {tool} not found (make bench installs wrk)", file=sys.stderr)
            return 2
    WORK.mkdir(parents=True, exist_ok=True)
    for old_log in WORK.glob("*-w[0-9]*.log"):  # the servers' logs of the run before
        old_log.unlink()
    load_before = load_average()
    log(f"load average {load_before}")
    database = prepare_database(args.households)
    found, missing = sample_cnics(20000, 8000)
    log(f"{len(found):,} registered CNICs sampled, {len(missing):,} unregistered")
    bench = Bench(duration, warmup, found, missing, create_partner_key())
    trips = round_trips(bench.partner_key)
    # The bench measures the app, not the abuse limits: the sender and CNIC limits are raised
    # and /v1 goes with a partner key of a huge quota; calls without a key keep the default
    # per-IP limit (the "default limits" scenario). Closed-loop wrk runs measure capacity with
    # the load-shedding gate as a pure concurrency limit (8 in flight, the rest queued, never
    # refused): under wrk every 503 comes back in microseconds and is replaced at once, so a
    # shedding server would report thousands of 503s a second, not its capacity; and without
    # the gate at all, 64 concurrent webhooks queue on a worker's database pool until they time
    # out (see docs/performance.md). Shedding is measured open loop, at 30, 50, 70 % and 2x that
    # capacity, with its defaults, and at 2x with the gate off, for contrast.
    open_limits = {"RABTA_LIMIT_SENDER": "1000000/hour", "RABTA_LIMIT_CNIC": "1000000/day"}
    queue_only = {"RABTA_SURGE_MAX_QUEUE": "100000", "RABTA_SURGE_MAX_WAIT_MS": "600000"}
    no_gate = {"RABTA_SURGE_MAX_IN_FLIGHT": "0"}
    profile: dict[str, Any] = {}
    servers: list[Server] = []

    def serve(name: str, workers: int, **env: str) -> Server:
        server = start(name, workers, **env)
        servers.append(server)
        return server

    def stop(server: Server) -> None:
        server.stop()
        servers.remove(server)

    try:
        for workers in (1, 2):
            server = serve("rabta", workers, **open_limits, **queue_only)
            top = bench.scenario(server, workers, "sms", "sms")["rps"]
            bench.scenario(server, workers, "sms, 50% resends", "sms", resend=0.5)
            bench.scenario(server, workers, "ussd", "ussd")
            bench.scenario(server, workers, "eligibility", "eligibility", key=bench.partner_key)
            if workers == 1 and not args.no_profile:
                profile = bench.profile(server, workers)
            if workers == 2:
                bench.scenario(server, workers, "eligibility, default limits", "eligibility")
            stop(server)
            if workers == 2:
                # The host's speed moves by tens of per cent within minutes, the maximum with
                # it: measured twice more, each time on a fresh server, and the highest of the
                # three is Rabta's maximum (a slow minute must not lower the bar).
                for again in range(2, 2 + STEADY_PASSES - 1):
                    server = serve("rabta", workers, **open_limits, **queue_only)
                    peak = bench.scenario(server, workers, max_again(again), "sms")["rps"]
                    top = max(top, peak)
                    stop(server)
                server = serve("rabta", workers, **open_limits)
                # The latency curve up to the target's load: where p99 crosses 50 ms; the
                # target's own run three times, read from the median (a slow minute must not
                # decide it either way).
                for share in (30, 50):
                    name = f"sms @ {share}% of max"
                    bench.open_loop(server, workers, name, share / 100 * top, duration)
                for n in range(1, 1 + STEADY_PASSES):
                    bench.open_loop(server, workers, steady_run(n), 0.7 * top, duration)
                overload = bench.open_loop(
                    server, workers, "sms @ 2x max (shedding on)", 2 * top, duration
                )
                overload["drain"] = drain_held()
                stop(server)
                server = serve("rabta", workers, **open_limits, **no_gate)
                bench.open_loop(server, workers, "sms @ 2x max (gate off)", 2 * top, duration)
                stop(server)
            server = serve("baseline", workers)
            bench.scenario(server, workers, "sms", "sms")
            bench.scenario(server, workers, "ussd", "ussd")
            bench.scenario(server, workers, "eligibility", "eligibility", key=bench.partner_key)
            stop(server)
    finally:
        for server in list(servers):
            server.stop()
        for path in WORK.glob("*.req"):  # tens of MB of signed requests, rebuilt every run
            path.unlink()
    database["size"] = psql(f"SELECT pg_size_pretty(pg_database_size('{DB_NAME}'))")
    report = {
        "finished": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": "smoke" if args.quick else "full",
        "duration": duration,
        "warmup": warmup,
        "load_before": load_before,
        "load_after": load_average(),
        "machine": machine(),
        "versions": versions(),
        "database": database,
        "results": bench.results,
        "targets": targets(bench.results),
        "profile": profile,
        "round_trips": trips,
        "wall_seconds": time.perf_counter() - wall,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    text = render_report(report)
    if not args.no_doc:
        write_doc(text)
        log(f"wrote {DOC.relative_to(ROOT)} and {RESULTS.relative_to(ROOT)}")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
