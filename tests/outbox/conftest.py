"""Fakes for outbox tests: recording senders, and local Twilio / Telegram API servers."""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from api.db import Database
from api.outbox.senders import SendResult
from api.registry.models import OutboundMessage

TWILIO_SID = "AC" + "0" * 32
TWILIO_TOKEN = "test-auth-token-0123456789abcdef"
TELEGRAM_TOKEN = "123456:TEST-telegram-token"


@dataclass
class Sent:
    id: int
    channel: str
    to: str
    body: str
    kind: str
    use_template: bool
    template: str | None


class RecordingSender:
    """Records every send; `script` yields exceptions to raise (None = succeed) per call."""

    def __init__(self, channel: str = "sms", *, delay: float = 0.0) -> None:
        self.channel = channel
        self.delay = delay
        self.sent: list[Sent] = []
        self.calls = 0
        self.script: deque[BaseException | None] = deque()
        self.hook: Callable[[OutboundMessage], Any] | None = None

    async def send(self, message: OutboundMessage, *, use_template: bool = False) -> SendResult:
        self.calls += 1
        if self.hook is not None:
            await self.hook(message)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.script:
            failure = self.script.popleft()
            if failure is not None:
                raise failure
        self.sent.append(
            Sent(
                message.id,
                message.channel,
                message.to,
                message.body,
                message.kind,
                use_template,
                message.template,
            )
        )
        return SendResult(provider_id=f"fake-{message.id}-{secrets.token_hex(4)}")


async def stored(db: Database, message_id: int) -> OutboundMessage:
    """The outbox row as the database holds it now."""
    async with db.sessions() as session:
        message = await session.get(OutboundMessage, message_id)
        assert message is not None
        return message


@pytest.fixture
def sender() -> RecordingSender:
    return RecordingSender("sms")


@pytest.fixture
def senders(sender: RecordingSender) -> dict[str, RecordingSender]:
    """One recording sender for every channel (it records each message's own channel)."""
    return {"sms": sender, "whatsapp": sender, "telegram": sender}


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Run an aiohttp app on 127.0.0.1 with a free port; yields its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


def twilio_created(request: web.Request, form: Mapping[str, Any], sid: str) -> web.Response:
    """Twilio's 201 to a Messages create of `form`: the message, queued as `sid`."""
    account = request.match_info["account"]
    return web.json_response(
        {
            "sid": sid,
            "account_sid": account,
            "to": form.get("To"),
            "from": form.get("From"),
            "body": form.get("Body", ""),
            "status": "queued",
            "num_segments": "1",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "date_created": "Mon, 23 Nov 2026 10:00:00 +0000",
            "uri": f"/2010-04-01/Accounts/{account}/Messages/{sid}.json",
        },
        status=201,
    )


async def bot_api_fields(request: web.Request) -> dict[str, Any]:
    """What a call to the Bot API carries, sent as JSON or as a form."""
    if request.content_type == "application/json":
        return await request.json()
    return {key: str(value) for key, value in (await request.post()).items()}


def bot_api_sent(data: dict[str, Any], message_id: int) -> web.Response:
    """The Bot API's answer to a sendMessage of `data`: the Message it sent, as `message_id`."""
    return web.json_response(
        {
            "ok": True,
            "result": {
                "message_id": message_id,
                "date": 1795000000,
                "chat": {"id": int(data["chat_id"]), "type": "private", "first_name": "A"},
                "from": {"id": 123456, "is_bot": True, "first_name": "Rabta"},
                "text": data.get("text", ""),
            },
        }
    )


@dataclass
class FakeTwilio:
    """Twilio's Messages API: records each create, answers from `replies` or with a message."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    #: (status, JSON body, headers) answered before the default 201.
    replies: deque[tuple[int, dict[str, Any], dict[str, str]]] = field(default_factory=deque)
    #: Awaited with (form, MessageSid) after a message is created and before Twilio answers:
    #: a status callback sent from here beats the worker's commit, as it can in production.
    on_create: Callable[[dict[str, str], str], Awaitable[None]] | None = None

    async def create(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.requests.append(
            {
                "path": request.path,
                "account": request.match_info["account"],
                "authorization": request.headers.get("Authorization", ""),
                "form": {key: str(value) for key, value in form.items()},
            }
        )
        if self.replies:
            status, body, headers = self.replies.popleft()
            return web.json_response(body, status=status, headers=headers)
        sid = "SM" + secrets.token_hex(16)
        if self.on_create is not None:
            await self.on_create(self.requests[-1]["form"], sid)
        return twilio_created(request, form, sid)


@pytest.fixture
async def fake_twilio() -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio()
    app = web.Application()
    app.router.add_post("/2010-04-01/Accounts/{account}/Messages.json", fake.create)
    async with serve(app) as url:
        fake.url = url
        yield fake


@dataclass
class FakeTelegram:
    """The Bot API's sendMessage: records each call, answers from `replies` or with a Message."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    replies: deque[tuple[int, dict[str, Any]]] = field(default_factory=deque)
    next_id: int = 100

    async def send_message(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != TELEGRAM_TOKEN:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        data = await bot_api_fields(request)
        self.requests.append(data)
        if self.replies:
            status, body = self.replies.popleft()
            return web.json_response(body, status=status)
        self.next_id += 1
        return bot_api_sent(data, self.next_id)


@pytest.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram()
    app = web.Application()
    app.router.add_post("/bot{token}/sendMessage", fake.send_message)
    async with serve(app) as url:
        fake.url = url
        yield fake
