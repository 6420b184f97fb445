"""Round trips per request to PostgreSQL and Redis, counted in-process: a figure that does not
move with the machine's load, unlike requests/s and CPU time on a shared machine.

Each path is driven through the real ASGI app (httpx's ASGI transport, no server) against the
bench database and Redis, after a warm-up; asyncpg calls that reach the server (simple queries
and prepared-statement executions, including BEGIN/COMMIT and the pool's pre-ping) and Redis
commands (a pipeline counts once) are counted for one request of each kind.

    .venv/bin/python bench/roundtrips.py [API_KEY]   # one JSON line; bench/run.py reports it
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import random
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # bench/run.py: the request builders and settings

COUNTS: collections.Counter[str] = collections.Counter()
STATEMENTS: list[str] = []
_counting = [False]


def _count(kind: str, text: str) -> None:
    if _counting[0]:
        COUNTS[kind] += 1
        STATEMENTS.append(f"{kind}: {text}")


def instrument() -> None:
    import asyncpg
    import redis.asyncio as aioredis
    from redis.asyncio.client import Pipeline

    execute = asyncpg.connection.Connection.execute
    fetch = asyncpg.prepared_stmt.PreparedStatement.fetch
    fetchrow = asyncpg.connection.Connection.fetchrow
    connection_fetch = asyncpg.connection.Connection.fetch
    command = aioredis.Redis.execute_command
    pipeline = Pipeline.execute

    async def counted_execute(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        _count("pg", query.split()[0] if query.strip() else "ping")
        return await execute(self, query, *args, **kwargs)

    async def counted_fetch(self: Any, *args: Any, **kwargs: Any) -> Any:
        _count("pg", " ".join(self.get_query().split()[:3]))
        return await fetch(self, *args, **kwargs)

    async def counted_fetchrow(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        _count("pg", " ".join(query.split()[:3]))
        return await fetchrow(self, query, *args, **kwargs)

    async def counted_connection_fetch(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        _count("pg", " ".join(query.split()[:3]))  # api/hot.py's statements
        return await connection_fetch(self, query, *args, **kwargs)

    async def counted_command(self: Any, *args: Any, **kwargs: Any) -> Any:
        _count("redis", str(args[0]))
        return await command(self, *args, **kwargs)

    async def counted_pipeline(self: Any, *args: Any, **kwargs: Any) -> Any:
        _count("redis", f"pipeline of {len(self.command_stack)}")
        return await pipeline(self, *args, **kwargs)

    asyncpg.connection.Connection.execute = counted_execute
    asyncpg.prepared_stmt.PreparedStatement.fetch = counted_fetch
    asyncpg.connection.Connection.fetchrow = counted_fetchrow
    asyncpg.connection.Connection.fetch = counted_connection_fetch
    aioredis.Redis.execute_command = counted_command
    Pipeline.execute = counted_pipeline


def split(raw: bytes) -> tuple[str, str, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = dict(line.split(": ", 1) for line in lines[1:])
    headers.pop("Host", None)
    headers.pop("Content-Length", None)
    return method, path, headers, body


def resend_of(raw: bytes, sid: str) -> bytes:
    """The same SMS again (same sender, same text) under a new MessageSid, signed."""
    _, _, _, body = split(raw)
    fields = dict(parse_qsl(body.decode(), keep_blank_values=True))
    fields.update(MessageSid=sid, SmsSid=sid, SmsMessageSid=sid)
    signature = run.twilio_signature(run.PUBLIC_BASE_URL + run.SMS_PATH, fields)
    return run.raw_post(
        run.SMS_PATH,
        urlencode(fields),
        {"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1"},
    )


async def measure(app: Any, found: list[str], missing: list[str], key: str) -> dict[str, Any]:
    import httpx

    rng = random.Random()  # noqa: S311 - test data; unseeded: message ids must be new each run
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=run.PUBLIC_BASE_URL) as client:

        async def send(raw: bytes) -> int:
            method, path, headers, body = split(raw)
            response = await client.request(method, path, headers=headers, content=body)
            return response.status_code

        async def one(make: Callable[[], Awaitable[int]]) -> dict[str, Any]:
            COUNTS.clear()
            STATEMENTS.clear()
            _counting[0] = True
            try:
                status = await make()
            finally:
                _counting[0] = False
            return {
                "status": status,
                "pg": COUNTS["pg"],
                "redis": COUNTS["redis"],
                "statements": list(STATEMENTS),
            }

        warm = run.sms_requests(30, rng, found, missing)
        for raw in warm:
            await send(raw)
        for raw in run.eligibility_requests(10, rng, found, missing, key):
            await send(raw)
        out: dict[str, Any] = {}
        first = run.sms_requests(1, rng, [found[0]], [found[0]])[0]
        out["sms (new sender, registered CNIC)"] = await one(lambda: send(first))
        second = run.sms_requests(1, rng, [found[1]], [found[1]])[0]
        await send(second)
        resend = resend_of(second, "SM" + uuid.uuid4().hex)
        out["sms resend within 60 s (cache hit)"] = await one(lambda: send(resend))
        session = run.ussd_requests(2, rng, [found[2]], [found[2]], 1)
        block = 2 * run.WRK_CONNECTIONS  # session 0's steps are at 0, block, 2*block, 3*block
        await send(session[0])
        out["ussd, menu step"] = await one(lambda: send(session[block]))
        await send(session[2 * block])
        out["ussd, CNIC step"] = await one(lambda: send(session[3 * block]))
        get = run.eligibility_requests(1, rng, found, missing, key)[0]
        out["GET /v1/eligibility (partner key)"] = await one(lambda: send(get))
        return out


async def main(key: str) -> dict[str, Any]:
    os.environ.update(
        run.rabta_env(RABTA_LIMIT_SENDER="1000000/hour", RABTA_LIMIT_CNIC="1000000/day")
    )
    instrument()
    found, missing = run.sample_cnics(200, 50)
    from api.main import create_app
    from api.settings import get_settings

    get_settings.cache_clear()
    app = create_app(get_settings())
    async with app.router.lifespan_context(app):
        rabta = await measure(app, found, missing, key)
    os.environ["DATABASE_URL"] = run.DATABASE_URL
    from baseline import Baseline  # bench/baseline.py

    base = Baseline()
    await base.start()
    try:
        baseline = await measure(base, found, missing, key)
    finally:
        await base.stop()
    return {"rabta": rabta, "baseline": baseline}


if __name__ == "__main__":
    partner_key = sys.argv[1] if len(sys.argv) > 1 else run.create_partner_key()
    print("ROUNDTRIPS " + json.dumps(asyncio.run(main(partner_key))))
