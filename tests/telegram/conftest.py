"""Telegram fixtures: a fake Bot API served on 127.0.0.1, the app configured to call it, and a
chat helper that posts Update JSON to the webhook and reads back what the bot sent."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from api.registry.models import OutboundMessage
from api.settings import Settings, get_settings
from api.telegram_cli import ChatUser, FakeBotApi, serve_fake_bot_api
from api.webhooks.telegram import SECRET_HEADER
from tests.conftest import app_client, load_payload, running_app

TOKEN = "123456:TEST-telegram-token"
SECRET = "test-secret_0123456789-abc"
URL = "/webhooks/telegram"
#: The user of tests/payloads/telegram_updates.json.
SHAZIA = 5012345678

_BIDI = re.compile("[\u2066-\u2069\u200e\u200f]")


def plain(text: str) -> str:
    """Text without the bidi isolates the renderer puts around numbers in RTL languages."""
    return _BIDI.sub("", text)


def payload(name: str, **changes: Any) -> dict[str, Any]:
    """One update from tests/payloads/telegram_updates.json (a deep copy), top-level changes
    applied."""
    update = copy.deepcopy(load_payload("telegram_updates.json")[name])
    update.update(changes)
    return update


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeBotApi]:
    fake = FakeBotApi()
    async with serve_fake_bot_api(fake):
        yield fake


@pytest.fixture
def telegram_settings(
    settings: Settings, fake_api: FakeBotApi, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """The test settings with Telegram on, pointed at the fake Bot API."""
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", fake_api.base_url)
    get_settings.cache_clear()
    return get_settings()


@pytest.fixture
async def tg_app(telegram_settings: Settings, db, redis) -> AsyncIterator[FastAPI]:
    """The `app` fixture's app, with Telegram on."""
    async with running_app(telegram_settings) as application:
        yield application


@pytest.fixture
async def tg_client(tg_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(tg_app) as http:
        yield http


async def post_update(
    client: httpx.AsyncClient, update: dict[str, Any], *, secret: str | bytes | None = SECRET
) -> httpx.Response:
    headers = {SECRET_HEADER: secret} if secret is not None else {}
    return await client.post(URL, json=update, headers=headers)


class TelegramChat:
    """One Telegram user talking to the webhook; replies are read from the fake Bot API."""

    def __init__(
        self, client: httpx.AsyncClient, fake: FakeBotApi, user: ChatUser | None = None
    ) -> None:
        self.client, self.fake = client, fake
        self.user = user or ChatUser(SHAZIA, first_name="Shazia")

    async def post(self, update: dict[str, Any]) -> list[dict[str, Any]]:
        """Post one update (must be answered 200); the messages the bot sent for it."""
        before = len(self.fake.sent)
        response = await post_update(self.client, update)
        assert response.status_code == 200, response.text
        return self.fake.sent[before:]

    async def send(self, text: str) -> str:
        return text_of(await self.post(self.user.text(text)))

    async def share(self, phone: str, *, own: bool = True) -> str:
        return text_of(await self.post(self.user.contact(phone, own=own)))

    async def press(self, data: str) -> str:
        return text_of(await self.post(self.user.press(data)))

    def last_markup(self) -> dict[str, Any]:
        return self.fake.sent[-1].get("reply_markup") or {}


def text_of(messages: list[dict[str, Any]]) -> str:
    return plain("\n".join(m["text"] for m in messages))


def buttons(markup: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, callback_data) of an inline keyboard, row by row."""
    return [
        (b["text"], b["callback_data"]) for row in markup.get("inline_keyboard", []) for b in row
    ]


async def outbox_rows(app) -> list[OutboundMessage]:
    async with app.state.runtime.db.sessions() as session:
        rows = await session.scalars(select(OutboundMessage).order_by(OutboundMessage.id))
        return list(rows)


def dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
