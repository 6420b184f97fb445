"""An open-loop, constant-rate HTTP load generator (what wrk2 does; Debian ships only wrk).

Request i is due at start + i/rate whatever happened to the ones before it, and its latency is
counted from that due time, not from when a connection was free to send it: a server that
stalls is charged for the whole queue it causes (no coordinated omission). Requests are the
pre-built raw HTTP requests of bench/run.py (NUL-separated), sent over `--connections`
keep-alive connections, all opened before the first request is due (as wrk does), at most one
request on each at a time. Each request has a timeout; a timed-out connection is closed and
replaced.

    .venv/bin/python bench/loadgen.py --url http://127.0.0.1:8000 --file F --rate 300 --duration 15

Prints one JSON line: sent, statuses, timeouts, errors, achieved rate, latency percentiles
(overall, per status class, and each second's p99).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from urllib.parse import urlsplit


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


async def _read_response(reader: asyncio.StreamReader) -> str:
    """The response's status, or `HELD` for a TwiML answer with no message in it."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = lines[0].split(b" ", 2)[1].decode()
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    if status == "200" and body.startswith(b"<?xml") and b"<Message>" not in body:
        return HELD
    return status


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
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

    Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]

    async def connect() -> Connection:
        return await asyncio.wait_for(asyncio.open_connection(host, port), timeout)

    # Every connection is open before the first request is due, as wrk opens its own and as a
    # gateway keeps its keep-alive connections: the schedule measures requests, not a storm of
    # new connections in its first second. The server gets a moment to accept them. One that
    # failed is opened by its worker when it has a request to send.
    opened = [
        None if isinstance(connection, BaseException) else connection
        for connection in await asyncio.gather(
            *(connect() for _ in range(connections)), return_exceptions=True
        )
    ]
    start = time.perf_counter() + 0.25
    result = Result(start)

    async def worker(connection: Connection | None) -> None:
        reader, writer = connection or (None, None)
        while True:
            item = await queue.get()
            if item is None:
                break
            due, raw = item
            for attempt in (1, 2):
                reused = writer is not None
                try:
                    if writer is None:
                        reader, writer = await connect()
                    assert reader is not None and writer is not None
                    remaining = max(0.001, due + timeout - time.perf_counter())
                    writer.write(raw)
                    # asyncio.timeout, not wait_for: on Python 3.11 wait_for starts a task per
                    # call, and this process shares the two cores with the server it measures.
                    async with asyncio.timeout(remaining):
                        status = await _read_response(reader)
                    result.record(status, time.perf_counter() - due, due)
                    break
                except TimeoutError:
                    result.timeouts += 1
                    if writer is not None:
                        writer.close()
                    reader = writer = None
                    break
                except (OSError, asyncio.IncompleteReadError) as exc:
                    if writer is not None:
                        writer.close()
                    reader = writer = None
                    if reused and attempt == 1:
                        # The server closed an idle keep-alive connection (uvicorn does after
                        # 5 s): what an HTTP client does is reconnect and send again.
                        result.reconnects += 1
                        continue
                    result.errors += 1
                    result.error_kinds[type(exc).__name__] += 1
                    break
                except (ValueError, IndexError) as exc:
                    result.errors += 1
                    result.error_kinds[type(exc).__name__] += 1
                    if writer is not None:
                        writer.close()
                    reader = writer = None
                    break
        if writer is not None:
            writer.close()

    workers = [asyncio.create_task(worker(connection)) for connection in opened]
    total = int(rate * duration)
    sent = 0
    while sent < total:
        now = time.perf_counter()
        due_count = min(total, int((now - start) * rate) + 1)
        while sent < due_count:
            queue.put_nowait((start + sent / rate, requests[sent % len(requests)]))
            sent += 1
        next_due = start + sent / rate
        await asyncio.sleep(max(0.0, next_due - time.perf_counter()))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - start
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
