"""USSD test helpers: a phone dialling the webhook as Africa's Talking posts it."""

from __future__ import annotations

import itertools
import json
import re

import httpx
import pytest

from bot.channels.ussd import fits
from tests.conftest import load_payload

URL = "/webhooks/ussd"


def ussd_form(session_id: str, phone: str, text: str) -> dict[str, str]:
    """The real payload's shape (tests/payloads/africastalking_ussd.json), with these values."""
    form = dict(load_payload("africastalking_ussd.json")["requests"][0])
    form.update(sessionId=session_id, phoneNumber=phone, text=text)
    return form


def screen_of(response: httpx.Response) -> str:
    """The screen a gateway would show: a 200 text/plain `CON …`/`END …` that fits."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    body = response.text
    assert body.startswith(("CON ", "END ")), body
    assert fits(body), f"does not fit one screen: {body!r}"
    return body


class Dial:
    """One phone in USSD sessions: each `send` is one typed input; `text` accumulates with `*`,
    and a new session starts after an `END`."""

    ids = itertools.count(1)

    def __init__(self, client: httpx.AsyncClient, phone: str) -> None:
        self.client, self.phone = client, phone
        self.session_id = ""
        self.text = ""
        self.ended = True
        self.screens: list[str] = []

    async def dial(self) -> str:
        """Start a session: the first hit, with an empty `text`."""
        self.session_id = f"ATUid_test{next(self.ids):026x}"
        self.text = ""
        return await self._post()

    async def send(self, value: str) -> str:
        """Type one input (dialling first when no session is open)."""
        if self.ended:
            await self.dial()
        self.text = value if not self.screens or self.text == "" else f"{self.text}*{value}"
        return await self._post()

    async def repost(self) -> str:
        """The gateway posting the same hit again."""
        return await self._post()

    async def _post(self) -> str:
        response = await self.client.post(
            URL, data=ussd_form(self.session_id, self.phone, self.text)
        )
        body = screen_of(response)
        self.ended = body.startswith("END ")
        self.screens.append(body)
        return body


@pytest.fixture
def dial(client):
    """A factory of dialling phones on the test app."""
    return lambda phone: Dial(client, phone)


async def delivered(app, settings, phone: str, kind: str) -> list[dict]:
    """Deliver the outbox to the console and return the messages of `kind` sent to `phone`."""
    from api.outbox.senders import build_senders
    from api.outbox.service import deliver_due

    runtime = app.state.runtime
    await deliver_due(runtime.db, build_senders(runtime.settings), worker_id="test")
    if not settings.console_outbox.exists():
        return []
    lines = [json.loads(x) for x in settings.console_outbox.read_text().splitlines() if x]
    return [x for x in lines if x["to"] == phone and x["kind"] == kind]


async def delivered_code(app, settings, phone: str) -> str:
    """The last one-time code that reached `phone`."""
    codes = await delivered(app, settings, phone, "otp")
    assert codes, "no code reached the registered phone"
    return re.search(r"(?<![0-9])[0-9]{6}(?![0-9])", codes[-1]["body"]).group(0)
