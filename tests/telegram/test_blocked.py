"""A person who blocks the bot has opted out of its messages, as STOP does; unblocking it opts
them back in, unless they had sent STOP. Telegram says so with a `my_chat_member` update, and a
send to a blocked chat is refused with 403 Forbidden: either way the Telegram contact is opted
out (for the block), and the outbox suppresses the notifications queued for it instead of
failing each one against Telegram."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse

from api.outbox.senders import build_senders
from api.outbox.service import deliver_due as deliver
from api.outbox.service import enqueue
from api.registry.models import Contact, OutboundMessage
from api.telegram_cli import ApiCall, FakeBotApi, _params, run_polling, serve_fake_bot_api
from api.webhooks import telegram as telegram_webhook
from tests.api.test_twilio_webhook import URL as SMS_URL
from tests.api.test_twilio_webhook import sms
from tests.telegram.conftest import SHAZIA, TelegramChat, post_update

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

BOT = {"id": 7000000001, "is_bot": True, "first_name": "Rabta", "username": "rabta_bot"}
USER = {"id": SHAZIA, "is_bot": False, "first_name": "Shazia", "language_code": "ur"}
CHAT = {"id": SHAZIA, "type": "private", "first_name": "Shazia"}
GROUP = {"id": -1001234567000, "type": "supergroup", "title": "Mohalla committee"}


class BlockableBotApi(FakeBotApi):
    """The fake Bot API, where the users in `blocked_by` have blocked the bot: a sendMessage to
    their chat is refused as Telegram refuses it."""

    def __init__(self) -> None:
        super().__init__()
        self.blocked_by: set[int] = set()

    async def _handle(self, request: Request) -> JSONResponse:
        if request.path_params["method"] == "sendMessage":
            params = await _params(request)
            if int(params.get("chat_id") or 0) in self.blocked_by:
                self.calls.append(ApiCall("sendMessage", params, request.path_params["token"]))
                return JSONResponse(
                    {
                        "ok": False,
                        "error_code": 403,
                        "description": "Forbidden: bot was blocked by the user",
                    },
                    status_code=403,
                )
        return await super()._handle(request)


@pytest.fixture
async def fake_api() -> AsyncIterator[BlockableBotApi]:
    fake = BlockableBotApi()
    async with serve_fake_bot_api(fake):
        yield fake


_update_ids = iter(range(734514000, 734515000))


def membership(new: str, old: str, *, chat: dict[str, Any] = CHAT) -> dict[str, Any]:
    """A `my_chat_member` update: the bot's status in `chat` went from `old` to `new`."""
    return {
        "update_id": next(_update_ids),
        "my_chat_member": {
            "chat": chat,
            "from": USER,
            "date": 1795430100,
            "old_chat_member": _member(old),
            "new_chat_member": _member(new),
        },
    }


def _member(status: str) -> dict[str, Any]:
    """The bot as a ChatMember of that status (a "kicked" one carries until_date, 0: forever)."""
    return {"status": status, "user": BOT} | ({"until_date": 0} if status == "kicked" else {})


BLOCKED = ("kicked", "member")
UNBLOCKED = ("member", "kicked")


async def opted_out(app, address: str = str(SHAZIA), channel: str = "telegram") -> bool | None:
    async with app.state.runtime.db.sessions() as session:
        return await session.scalar(
            select(Contact.opted_out).where(Contact.channel == channel, Contact.address == address)
        )


async def opted_out_by(app, address: str = str(SHAZIA)) -> str | None:
    async with app.state.runtime.db.sessions() as session:
        return await session.scalar(
            select(Contact.opted_out_by).where(
                Contact.channel == "telegram", Contact.address == address
            )
        )


async def notify(app, body: str, *, kind: str = "grievance_status") -> None:
    """Queue a message to Shazia's chat, as a grievance update is queued."""
    async with app.state.runtime.db.transaction() as session:
        await enqueue(session, channel="telegram", to=str(SHAZIA), body=body, kind=kind)


async def deliver_due(app):
    runtime = app.state.runtime
    return await deliver(runtime.db, build_senders(runtime.settings), worker_id="t")


async def statuses(app) -> dict[str, str]:
    async with app.state.runtime.db.sessions() as session:
        rows = await session.execute(select(OutboundMessage.body, OutboundMessage.status))
        return dict(rows.all())


async def test_blocking_the_bot_opts_out_and_unblocking_opts_back_in(
    tg_app, tg_client, fake_api, registry
):
    chat = TelegramChat(tg_client, fake_api)
    await chat.send("HELP")
    assert await opted_out(tg_app) is False

    sent = len(fake_api.sent)
    assert (await post_update(tg_client, membership(*BLOCKED))).status_code == 200
    assert (await opted_out(tg_app), await opted_out_by(tg_app)) == (True, "blocked")
    assert len(fake_api.sent) == sent  # nothing is said to someone who just blocked the bot
    await notify(tg_app, "G-7K3M9Q: resolved")
    report = await deliver_due(tg_app)
    assert (report.suppressed, report.sent, report.failed) == (1, 0, 0)
    assert len(fake_api.called("sendMessage")) == sent  # Telegram was not even asked

    assert (await post_update(tg_client, membership(*UNBLOCKED))).status_code == 200
    assert (await opted_out(tg_app), await opted_out_by(tg_app)) == (False, None)
    await notify(tg_app, "G-7K3M9Q: reopened")
    assert (await deliver_due(tg_app)).sent == 1
    assert fake_api.sent[-1]["text"] == "G-7K3M9Q: reopened"
    assert await statuses(tg_app) == {
        "G-7K3M9Q: resolved": "suppressed",
        "G-7K3M9Q: reopened": "sent",
    }


async def test_a_stop_outlasts_a_block_and_its_unblock(tg_app, tg_client, fake_api, registry):
    """She sent STOP, then blocked the bot and unblocked it: she never sent START, so her
    updates stay off (the unblock ends only an opt-out a block made)."""
    chat = TelegramChat(tg_client, fake_api)
    await chat.send("STOP")
    assert await opted_out(tg_app) is True
    for change in (BLOCKED, UNBLOCKED):
        assert (await post_update(tg_client, membership(*change))).status_code == 200
    assert await opted_out(tg_app) is True
    assert await opted_out_by(tg_app) == "stop"
    await notify(tg_app, "G-7K3M9Q: resolved")
    assert (await deliver_due(tg_app)).suppressed == 1

    await chat.send("START")
    await notify(tg_app, "G-7K3M9Q: reopened")
    assert (await deliver_due(tg_app)).sent == 1


async def test_a_stop_by_sms_outlasts_an_unblock_of_the_bot(tg_app, tg_client, fake_api, registry):
    """Her Telegram chat (its phone shared) was blocked; she then texted STOP from that phone,
    which holds on every channel of it: unblocking the bot later must not end that STOP."""
    chat = TelegramChat(tg_client, fake_api)
    await chat.send("HELP")
    await chat.share("+923001234567")
    await post_update(tg_client, membership(*BLOCKED))
    assert await opted_out_by(tg_app) == "blocked"
    stop = sms("STOP", "SMstopwhileblocked01", sender="+923001234567")
    assert (await tg_client.post(SMS_URL, data=stop)).status_code == 200
    assert await opted_out_by(tg_app) == "stop"
    await post_update(tg_client, membership(*UNBLOCKED))
    assert (await opted_out(tg_app), await opted_out_by(tg_app)) == (True, "stop")


async def test_start_after_a_block_opts_back_in(tg_app, tg_client, fake_api, registry):
    """A refused reply opted her out for a block; she unblocked the bot (Telegram told a
    webhook that does not ask for `my_chat_member` nothing) and sent START: she is opted in."""
    chat = TelegramChat(tg_client, fake_api)
    fake_api.blocked_by.add(SHAZIA)
    await chat.post(chat.user.text("HELP"))
    assert (await opted_out(tg_app), await opted_out_by(tg_app)) == (True, "blocked")
    fake_api.blocked_by.clear()
    await chat.send("START")
    assert await opted_out(tg_app) is False
    await notify(tg_app, "G-7K3M9Q: resolved")
    assert (await deliver_due(tg_app)).sent == 1


async def test_a_block_opts_out_the_telegram_contact_only(tg_app, tg_client, fake_api, registry):
    """Blocking the bot is about Telegram: the person's SMS, where they never said STOP, keeps
    its updates (a STOP would have stopped both)."""
    chat = TelegramChat(tg_client, fake_api)
    await chat.send("HELP")
    await chat.share("+923001234567")  # the Telegram contact now holds a proven phone
    async with tg_app.state.runtime.db.transaction() as session:
        session.add(Contact(channel="sms", address="+923001234567", phone="+923001234567"))
    await post_update(tg_client, membership(*BLOCKED))
    assert await opted_out(tg_app) is True
    assert await opted_out(tg_app, "+923001234567", channel="sms") is False


async def test_a_reply_refused_as_blocked_opts_the_contact_out(
    tg_app, tg_client, fake_api, registry, caplog
):
    """The person blocked the bot while their message was on its way (or before Rabta asked
    Telegram for `my_chat_member`): the refused reply says so, and the updates queued for them
    are not sent."""
    caplog.set_level(logging.INFO, logger="api.webhooks.telegram")
    fake_api.blocked_by.add(SHAZIA)
    chat = TelegramChat(tg_client, fake_api)
    assert await chat.post(chat.user.text("HELP")) == []  # 200: nothing to send again
    assert await opted_out(tg_app) is True
    assert "blocked the bot" in caplog.text
    await notify(tg_app, "G-7K3M9Q: resolved")
    assert (await deliver_due(tg_app)).suppressed == 1


async def test_a_notification_refused_as_blocked_opts_out_and_quiets_the_rest(
    tg_app, tg_client, fake_api, registry
):
    """The outbox meets the block first: that message fails, the contact is opted out, and
    the next notifications for them (in this batch and later ones) are suppressed, not sent
    one by one into 403s."""
    await TelegramChat(tg_client, fake_api).send("HELP")
    fake_api.blocked_by.add(SHAZIA)
    asked = len(fake_api.called("sendMessage"))
    for n in range(3):
        await notify(tg_app, f"update {n}")
    report = await deliver_due(tg_app)
    assert (report.failed, report.suppressed, report.sent) == (1, 2, 0)
    assert len(fake_api.called("sendMessage")) == asked + 1
    assert (await opted_out(tg_app), await opted_out_by(tg_app)) == (True, "blocked")
    assert await statuses(tg_app) == {
        "update 0": "failed",
        "update 1": "suppressed",
        "update 2": "suppressed",
    }
    await notify(tg_app, "update 3")
    assert (await deliver_due(tg_app)).suppressed == 1


async def test_the_bot_added_to_a_group_changes_no_one(tg_app, tg_client, fake_api, registry):
    await TelegramChat(tg_client, fake_api).send("HELP")
    for status, old in (("member", "left"), ("kicked", "member")):
        response = await post_update(tg_client, membership(status, old, chat=GROUP))
        assert response.status_code == 200
    assert await opted_out(tg_app) is False
    assert await opted_out(tg_app, str(GROUP["id"])) is None


async def test_a_block_not_recorded_is_asked_for_again(
    tg_app, tg_client, fake_api, registry, monkeypatch
):
    """The database away: 503, so that Telegram delivers the update again."""
    await TelegramChat(tg_client, fake_api).send("HELP")
    database = {"away": True}
    real = telegram_webhook.opt_out

    def opt_out(*args: Any, **kwargs: Any) -> Any:
        if database["away"]:
            raise ConnectionRefusedError("database away")
        return real(*args, **kwargs)

    monkeypatch.setattr(telegram_webhook, "opt_out", opt_out)
    update = membership(*BLOCKED)
    assert (await post_update(tg_client, update)).status_code == 503
    database["away"] = False
    assert await opted_out(tg_app) is False
    assert (await post_update(tg_client, update)).status_code == 200
    assert await opted_out(tg_app) is True


async def test_polling_reads_a_block_too(telegram_settings, fake_api, db, redis, registry):
    async with db.transaction() as session:
        session.add(Contact(channel="telegram", address=str(SHAZIA)))
    stop = asyncio.Event()
    task = asyncio.create_task(run_polling(telegram_settings, stop=stop, poll_timeout=1))
    try:
        fake_api.push_update(membership(*BLOCKED))
        async with asyncio.timeout(10):
            while True:
                async with db.sessions() as session:
                    if await session.scalar(select(Contact.opted_out)):
                        break
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)
    assert "my_chat_member" in fake_api.called("getUpdates")[0].params["allowed_updates"]
