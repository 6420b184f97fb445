"""The baseline Rabta is measured against: a bare ASGI app doing the same I/O as Rabta's hot paths.

Per request: the Twilio signature check (SMS), one Redis rate-limit call (INCR + EXPIRE in one
pipeline), one indexed asyncpg query joining persons → households (SMS, the CNIC step of USSD,
GET /v1/eligibility), and the same reply text as Rabta (its own templates, rendered once at
start-up for each status in the default language, the masked CNIC put in per request). Nothing
else: no framework, no ORM, no dedup or contact writes, no conversation state, no logging. It is
the floor of what serving these answers costs in Python on this machine.

Run like Rabta (same uvicorn, same loop, same workers):
    DATABASE_URL=postgresql://… REDIS_URL=redis://… TWILIO_AUTH_TOKEN=… \
        .venv/bin/uvicorn bench.baseline:app --workers 2 --port 8001
Pools match Rabta's: asyncpg 10 connections, growing to 30 (SQLAlchemy's pool_size=10,
max_overflow=20), and redis-py's default pool.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

import asyncpg
import redis.asyncio as aioredis

PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "")
CUTOFF = float(os.environ.get("RABTA_PMT_CUTOFF", "32"))
LIMIT = int(os.environ.get("BASELINE_LIMIT", "1000000000"))
LANGUAGE = os.environ.get("RABTA_DEFAULT_LANGUAGE", "ur")
PLACEHOLDER = "@@CNIC@@"
QUERY = (
    "SELECT h.status, h.pmt_score FROM persons p "
    "JOIN households h ON h.household_id = p.household_id WHERE p.cnic = $1"
)
TWIML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>'
_NON_DIGITS = re.compile(r"[^0-9]")

# Rabta's USSD screens for a new phone choosing English (language menu, main menu, CNIC prompt).
USSD_SCREENS = {
    0: "CON Zaban:\n1 English\n2 اردو\n3 Roman Urdu\n4 سنڌي\n5 پښتو\n6 پنجابی",
    1: "CON BISP menu:\n1 Check eligibility\n2 My payment\n3 File a complaint\n"
    "4 Complaint status\n5 Language",
    2: "CON Enter the 13-digit CNIC number:\n0 Back",
}


def _replies(channel: str) -> dict[str, str]:
    """Rabta's own reply for each status, rendered once, with a placeholder for the CNIC."""
    from api.programmes import get_programmes
    from bot.channels.base import Reply
    from bot.render import Renderer

    programmes = get_programmes()
    renderer = Renderer(brand=programmes.brand, programme_name=programmes.name)
    language = LANGUAGE if channel == "sms" else "en"
    out = {}
    for status in ("eligible", "not_eligible", "not_found", "under_review"):
        rendered = renderer.render(
            [Reply(f"eligibility/{status}", {"cnic": PLACEHOLDER})],
            language=language,
            channel=channel,
        )
        out[status] = rendered.text
    return out


def _mask(digits: str) -> str:
    return f"{digits[:5]}-*******-{digits[-1]}"


def _decide(row: Any) -> str:
    if row is None:
        return "not_found"
    if row["status"] == "under_review":
        return "under_review"
    return "eligible" if float(row["pmt_score"]) <= CUTOFF else "not_eligible"


def _signature_ok(url: str, params: list[tuple[str, str]], signature: str) -> bool:
    """Twilio's scheme: HMAC-SHA1 over the URL and the sorted name+value pairs, base64."""
    payload = url + "".join(k + v for k, v in sorted(params))
    digest = hmac.new(TOKEN.encode(), payload.encode(), hashlib.sha1).digest()
    return hmac.compare_digest(base64.b64encode(digest).decode(), signature)


class Baseline:
    def __init__(self) -> None:
        self.pool: asyncpg.Pool | None = None
        self.redis: aioredis.Redis | None = None
        self.sms: dict[str, str] = {}
        self.ussd: dict[str, str] = {}

    async def start(self) -> None:
        dsn = os.environ["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
        self.pool = await asyncpg.create_pool(dsn, min_size=10, max_size=30)
        self.redis = aioredis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"))
        self.sms = _replies("sms")
        self.ussd = _replies("ussd")

    async def stop(self) -> None:
        if self.pool:
            await self.pool.close()
        if self.redis:
            await self.redis.aclose()

    async def limited(self, key: str) -> bool:
        assert self.redis is not None
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, 3600)
            count, _ = await pipe.execute()
        return int(count) > LIMIT

    async def status_of(self, digits: str) -> str:
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(QUERY, digits)
        return _decide(row)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await self.start()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.stop()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path = scope["path"]
        if scope["method"] == "GET" and path.startswith("/v1/eligibility/"):
            await self.eligibility(scope, send, path.rsplit("/", 1)[1])
        elif scope["method"] == "POST" and path == "/webhooks/twilio/messaging":
            await self.messaging(scope, await _body(receive), send)
        elif scope["method"] == "POST" and path == "/webhooks/ussd":
            await self.ussd_hit(await _body(receive), send)
        elif path == "/healthz":
            await _respond(send, 200, b"ok", b"text/plain")
        else:
            await _respond(send, 404, b"not found", b"text/plain")

    async def messaging(self, scope: dict, body: bytes, send: Any) -> None:
        params = parse_qsl(body.decode(), keep_blank_values=True)
        signature = ""
        for name, value in scope["headers"]:
            if name == b"x-twilio-signature":
                signature = value.decode()
        if TOKEN and not _signature_ok(PUBLIC_BASE_URL + scope["path"], params, signature):
            await _respond(send, 403, b"forbidden", b"text/plain")
            return
        fields = dict(params)
        sender = fields.get("From", "")
        if await self.limited(f"baseline:rl:sender:{sender}"):
            await _respond(send, 429, b"", b"text/plain")
            return
        digits = _NON_DIGITS.sub("", fields.get("Body", ""))
        status = await self.status_of(digits) if len(digits) == 13 else "not_found"
        text = self.sms[status].replace(PLACEHOLDER, _mask(digits))
        twiml = f"{TWIML_HEAD}<Response><Message>{escape(text)}</Message></Response>"
        await _respond(send, 200, twiml.encode(), b"application/xml")

    async def ussd_hit(self, body: bytes, send: Any) -> None:
        fields = dict(parse_qsl(body.decode(), keep_blank_values=True))
        if await self.limited(f"baseline:ussd:{fields.get('sessionId', '')}"):
            await _respond(send, 429, b"", b"text/plain")
            return
        steps = fields.get("text", "").split("*") if fields.get("text") else []
        if len(steps) < 3:
            screen = USSD_SCREENS[len(steps)]
        else:
            digits = _NON_DIGITS.sub("", steps[-1])
            status = await self.status_of(digits) if len(digits) == 13 else "not_found"
            screen = "END " + self.ussd[status].replace(PLACEHOLDER, _mask(digits))
        await _respond(send, 200, screen[:182].encode(), b"text/plain; charset=utf-8")

    async def eligibility(self, scope: dict, send: Any, raw: str) -> None:
        key = "ip"
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                key = "key:" + hashlib.sha256(value).hexdigest()
        if await self.limited(f"baseline:rl:{key}"):
            await _respond(send, 429, b"{}", b"application/problem+json")
            return
        digits = _NON_DIGITS.sub("", raw)
        if len(digits) != 13:
            await _respond(send, 422, b"{}", b"application/problem+json")
            return
        status = await self.status_of(digits)
        body = json.dumps({"cnic_masked": _mask(digits), "status": status}).encode()
        await _respond(send, 200, body, b"application/json")


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(send: Any, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


app = Baseline()
