"""The open-loop load generator of `make bench` (bench/loadgen.py), against a local server.

The generator decides what the bench's overload and 70 % figures mean: these check that it
counts what it sends, opens connections only as the load needs them (never more than asked),
gives each request to the connection idle longest, and times out and replaces what stalls."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import loadgen  # bench/ is a folder of scripts, not a package

REQUEST = (
    b"POST /webhooks/twilio/messaging HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 6\r\n\r\nBody=1"
)
REPLY = b'<?xml version="1.0" encoding="UTF-8"?><Response><Message>ok</Message></Response>'
HELD_REPLY = b'<?xml version="1.0" encoding="UTF-8"?><Response />'


class Server:
    """A keep-alive HTTP server: answers each request after `delay` seconds (every `stall`-th
    request never), a held TwiML for every `held`-th; counts requests and open connections."""

    def __init__(self, *, delay: float = 0.0, stall: int = 0, held: int = 0) -> None:
        self.delay, self.stall, self.held = delay, stall, held
        self.requests = 0
        self.open = 0
        self.most_open = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                self.requests += 1
                number = self.requests
                if self.stall and number % self.stall == 0:
                    await reader.read()  # never answered: until the client gives up on it
                    return
                await asyncio.sleep(self.delay)
                body = HELD_REPLY if self.held and number % self.held == 0 else REPLY
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            writer.close()


async def _run(server: Server, **options: float) -> dict:
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        return await loadgen.run(
            f"http://127.0.0.1:{port}",
            [REQUEST],
            rate=options.get("rate", 200.0),
            duration=options.get("duration", 1.0),
            connections=int(options.get("connections", 64)),
            timeout=options.get("timeout", 5.0),
        )
    finally:
        listener.close()


async def test_everything_sent_is_counted_on_few_connections_used_in_turn() -> None:
    server = Server(delay=0.004, held=10)
    result = await _run(server, rate=200.0, duration=1.0)
    assert result["sent"] == result["completed"] == server.requests == 200
    assert result["statuses"] == {"200": 180, loadgen.HELD: 20}
    assert result["timeouts"] == result["errors"] == 0
    # About one request in flight at a time: some connections, not all 64 allowed.
    assert server.most_open == result["peak_connections"] < 64
    assert result["by_status"]["200"]["p99_ms"] >= 4.0


class _Idle:
    """A connection that is open and records what it is given."""

    def __init__(self, name: str, given: list[str]) -> None:
        self.name, self.given, self.item = name, given, None

    def send(self, item: tuple[float, bytes, int]) -> None:
        self.item = item
        self.given.append(self.name)


async def test_the_connection_idle_longest_takes_the_next_request() -> None:
    generator = loadgen._Generator("127.0.0.1", 9, 8, 5.0)
    given: list[str] = []
    for name in "abc":
        generator.ready(_Idle(name, given))  # type: ignore[arg-type]
    for _ in range(6):
        generator.dispatch((time.perf_counter(), REQUEST, 1))
        (busy,) = generator.busy
        generator.answered(busy, "200")
    assert given == ["a", "b", "c", "a", "b", "c"]


async def test_a_slow_server_gets_more_connections_but_never_more_than_asked() -> None:
    server = Server(delay=0.2)  # 200/s × 0.2 s: about 40 in flight
    result = await _run(server, rate=200.0, duration=1.0, connections=16)
    assert server.most_open == result["peak_connections"] == 16
    assert result["completed"] == 200
    assert result["timeouts"] == 0
    # Queued behind 16 connections, the later requests wait: counted from when they were due.
    assert result["p99_ms"] > 1000


async def test_stalled_requests_time_out_and_their_connections_are_replaced() -> None:
    server = Server(delay=0.001, stall=5)
    result = await _run(server, rate=100.0, duration=1.0, connections=8, timeout=1.0)
    assert result["timeouts"] == 20
    assert result["statuses"] == {"200": 80}
    assert result["sent"] == 100
    assert server.most_open <= result["peak_connections"] <= 8
