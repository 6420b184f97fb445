"""An open-loop, constant-rate HTTP load generator (what wrk2 does; Debian ships only wrk).

Request i is due at start + i/rate whatever happened to the ones before it, and its latency is
counted from that due time, not from when a connection was free to send it: a server that
stalls is charged for the whole queue it causes (no coordinated omission). Requests are the
pre-built raw HTTP requests of bench/run.py (NUL-separated), sent over `--connections`
keep-alive connections, opened as the load needs them (no more than that), at most one
request on each at a time, the one idle longest first; responses are parsed by httptools. Each
request has a timeout, counted from its due time; a timed-out connection is closed and
replaced. The generator's own CPU per request is reported: it shares the machine with the
server it measures.

    .venv/bin/python bench/loadgen.py --url http://127.0.0.1:8000 --file F --rate 300 --duration 15

Prints one JSON line: sent, statuses, timeouts, errors, achieved rate, latency percentiles
(overall, per status class, and each second's p99).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter, deque
from urllib.parse import urlsplit

import httptools


def load_requests(path: str) -> list[bytes]:
    with open(path, "rb") as f:
        return [r for r in f.read().split(b"\0") if r]


def percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


class Result:
    def __init__(self, start: float) -> None:
        self.start = start
        self.statuses: Counter[str] = Counter()
        self.latencies: dict[str, list[float]] = {}
        #: Latencies by the second of the run their request was due in: a tail spread over
        #: every second is a queue; one packed into a second or two is a stall.
        self.by_second: dict[int, list[float]] = {}
        self.timeouts = 0
        self.errors = 0
        self.error_kinds: Counter[str] = Counter()
        self.reconnects = 0
        self.completed = 0

    def record(self, key: str, latency: float, due: float) -> None:
        self.statuses[key] += 1
        self.latencies.setdefault(key, []).append(latency)
        self.by_second.setdefault(int(due - self.start), []).append(latency)
        self.completed += 1

    def seconds(self) -> list[dict[str, float]]:
        """Each second's answered requests and their p99."""
        return [
            {
                "second": second,
                "count": len(lats),
                "p99_ms": round(percentile(sorted(lats), 0.99) * 1000, 2),
            }
            for second, lats in sorted(self.by_second.items())
        ]


#: A 200 whose TwiML holds no message: Rabta held the SMS, to answer it later (api/held.py).
HELD = "200 held"


class _Connection(asyncio.Protocol):
    """One keep-alive connection: at most one request in flight, its response parsed by
    httptools (uvicorn's own parser) as it arrives."""

    def __init__(self, generator: _Generator) -> None:
        self.generator = generator
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        #: The request in flight: (due time, raw request, attempt).
        self.item: tuple[float, bytes, int] | None = None
        self.body = b""
        self.reused = False

    def send(self, item: tuple[float, bytes, int]) -> None:
        assert self.transport is not None
        self.item = item
        self.body = b""
        self.transport.write(item[1])

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.generator.ready(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.generator.failed(self, type(exc).__name__)

    def connection_lost(self, exc: Exception | None) -> None:
        self.generator.lost(self)

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        status = str(self.parser.get_status_code())
        if status == "200" and self.body.startswith(b"<?xml") and b"<Message>" not in self.body:
            status = HELD
        self.generator.answered(self, status)


class _Generator:
    """Requests due on a fixed schedule, each handed to the connection idle longest (or queued
    for the next one to come free), so they are spread over every connection as wrk2 spreads
    them; a sweep every 10 ms times out what has waited `timeout` since its due time.
    Protocol callbacks rather than streams and a task per connection: this process shares
    the cores with the server it measures, and costs it as little as it can."""

    def __init__(self, host: str, port: int, connections: int, timeout: float) -> None:
        self.host, self.port = host, port
        self.connections = connections
        self.timeout = timeout
        self.loop = asyncio.get_running_loop()
        self.idle: deque[_Connection] = deque()
        self.busy: set[_Connection] = set()
        self.pending: deque[tuple[float, bytes, int]] = deque()
        self.opening = 0
        self.result = Result(0.0)
        self.closing = False
        #: The most connections open (or being opened) at once.
        self.peak = 0

    async def _connect(self) -> None:
        """Open one connection; `opening` was counted up for it when it was asked for, so that
        `grow` does not ask for it a second time before this has even begun."""
        try:
            await asyncio.wait_for(
                self.loop.create_connection(lambda: _Connection(self), self.host, self.port),
                self.timeout,
            )
        except (OSError, TimeoutError) as exc:
            self.result.error_kinds["connect " + type(exc).__name__] += 1
        finally:
            self.opening -= 1

    def grow(self) -> None:
        """One more connection for each request waiting beyond those being opened, up to
        `connections`: the pool grows with the load, as a gateway's or nginx's does, and the
        server's workers race to accept each new one as they do in production. (Opened all at
        once before the first request, against an idle server, they went 218 to one worker and
        38 to the other.)"""
        while (
            len(self.pending) > self.opening
            and len(self.busy) + len(self.idle) + self.opening < self.connections
            and not self.closing
        ):
            self.opening += 1
            self.loop.create_task(self._connect())
        self.peak = max(self.peak, len(self.busy) + len(self.idle) + self.opening)

    def dispatch(self, item: tuple[float, bytes, int]) -> None:
        if self.idle:
            connection = self.idle.popleft()
            self.busy.add(connection)
            connection.send(item)
        else:
            self.pending.append(item)
            self.grow()

    def ready(self, connection: _Connection) -> None:
        """A connection is open, or has finished its request: give it the next one waiting."""
        if self.pending:
            self.busy.add(connection)
            connection.send(self.pending.popleft())
        else:
            self.idle.append(connection)

    def answered(self, connection: _Connection, status: str) -> None:
        assert connection.item is not None
        due = connection.item[0]
        self.result.record(status, time.perf_counter() - due, due)
        connection.item = None
        connection.reused = True
        self.busy.discard(connection)
        self.ready(connection)

    def failed(self, connection: _Connection, kind: str) -> None:
        """A response that could not be parsed: an error, and the connection is replaced."""
        if connection.item is not None:
            self.result.errors += 1
            self.result.error_kinds[kind] += 1
            connection.item = None
        self._drop(connection)

    def lost(self, connection: _Connection) -> None:
        item, connection.item = connection.item, None
        was_open = connection in self.busy or connection in self.idle
        self._forget(connection)
        if item is not None:
            if connection.reused and item[2] == 1:
                # The server closed an idle keep-alive connection (uvicorn does after 5 s):
                # what an HTTP client does is reconnect and send again.
                self.result.reconnects += 1
                self.pending.appendleft((item[0], item[1], 2))
            else:
                self.result.errors += 1
                self.result.error_kinds["ConnectionLost"] += 1
        if was_open:
            self.grow()

    def _forget(self, connection: _Connection) -> None:
        self.busy.discard(connection)
        if connection in self.idle:
            self.idle.remove(connection)

    def _drop(self, connection: _Connection) -> None:
        self._forget(connection)
        if connection.transport is not None:
            connection.transport.abort()  # connection_lost follows, and finds it forgotten
        self.grow()

    def sweep(self) -> None:
        """Time out what has waited `timeout` since it was due: in flight (its connection is
        closed and replaced) or still queued (it could not be answered in time anyway)."""
        late = time.perf_counter() - self.timeout
        for connection in [c for c in self.busy if c.item is not None and c.item[0] < late]:
            self.result.timeouts += 1
            connection.item = None
            self._drop(connection)
        while self.pending and self.pending[0][0] < late:
            self.pending.popleft()
            self.result.timeouts += 1
        self.grow()  # for what is still waiting: a connection that failed to open, say

    def outstanding(self) -> bool:
        return bool(self.pending or self.busy)

    def close(self) -> None:
        self.closing = True
        for connection in [*self.idle, *self.busy]:
            if connection.transport is not None:
                connection.transport.close()


async def run(
    url: str,
    requests: list[bytes],
    *,
    rate: float,
    duration: float,
    connections: int,
    timeout: float,  # noqa: ASYNC109 - a per-request budget, not the call's
) -> dict:
    parts = urlsplit(url)
    generator = _Generator(parts.hostname or "127.0.0.1", parts.port or 80, connections, timeout)
    cpu_before = time.process_time()
    start = time.perf_counter()
    result = generator.result
    result.start = start
    total = int(rate * duration)
    sent = 0
    next_sweep = start
    while sent < total:
        now = time.perf_counter()
        due_count = min(total, int((now - start) * rate) + 1)
        while sent < due_count:
            generator.dispatch((start + sent / rate, requests[sent % len(requests)], 1))
            sent += 1
        if now >= next_sweep:
            generator.sweep()
            next_sweep = now + 0.01
        # At least a millisecond: the event loop's timers count whole milliseconds, and a
        # shorter sleep is rounded to none, a busy loop that took a core from the server this
        # measures. What falls due meanwhile is sent together on waking, up to a millisecond
        # late: latency counts from the due time, so the server is charged for it.
        next_due = start + sent / rate
        await asyncio.sleep(max(0.001, next_due - time.perf_counter()))
    while generator.outstanding():
        generator.sweep()
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_before
    generator.close()
    everything = sorted(lat for lats in result.latencies.values() for lat in lats)
    by_class: dict[str, dict[str, float]] = {}
    for status, lats in result.latencies.items():
        ordered = sorted(lats)
        by_class[status] = {
            "count": len(ordered),
            "p50_ms": round(percentile(ordered, 0.50) * 1000, 2),
            "p99_ms": round(percentile(ordered, 0.99) * 1000, 2),
            "max_ms": round(ordered[-1] * 1000, 2),
        }
    return {
        "rate_target": rate,
        "sent": sent,
        "completed": result.completed,
        "achieved_rps": round(result.completed / elapsed, 1),
        "elapsed_s": round(elapsed, 2),
        "statuses": dict(result.statuses),
        "timeouts": result.timeouts,
        "errors": result.errors,
        "error_kinds": dict(result.error_kinds),
        "reconnects": result.reconnects,
        "p50_ms": round(percentile(everything, 0.50) * 1000, 2),
        "p90_ms": round(percentile(everything, 0.90) * 1000, 2),
        "p99_ms": round(percentile(everything, 0.99) * 1000, 2),
        "max_ms": round(everything[-1] * 1000, 2) if everything else 0.0,
        "by_status": by_class,
        "seconds": result.seconds(),
        "wrapped": sent > len(requests),
        "peak_connections": generator.peak,
        "generator_cpu_ms_per_request": round(1000 * cpu / max(1, sent), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--file", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        pass
    summary = asyncio.run(
        run(
            args.url,
            load_requests(args.file),
            rate=args.rate,
            duration=args.duration,
            connections=args.connections,
            timeout=args.timeout,
        )
    )
    print("LOADJSON " + json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
