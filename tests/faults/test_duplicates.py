"""The same webhook delivered 10 times at once (a gateway retrying a slow answer, a double tap):
one side effect and identical replies, on every channel that has one."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import func, select

from api.registry.models import Grievance, InboundMessage, OutboundMessage
from tests.api.test_sms_payments import HELPER_PHONE, Chat
from tests.api.test_twilio_webhook import URL as SMS_URL
from tests.api.test_twilio_webhook import reply_text, sms
from tests.conftest import ELIGIBLE_PHONE, ELIGIBLE_WIFE, NOT_ELIGIBLE_PHONE
from tests.security.figures import figure
from tests.telegram.conftest import (  # noqa: F401 - fixtures
    TelegramChat,
    fake_api,
    post_update,
    telegram_settings,
    tg_app,
    tg_client,
)
from tests.ussd.conftest import URL as USSD_URL
from tests.ussd.conftest import screen_of, ussd_form

COPIES = 10


async def count(db, model, *where) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)))


async def at_once(send, copies: int = COPIES) -> list:
    return await asyncio.gather(*(send() for _ in range(copies)))


@dataclass
class Deliveries:
    """What the copies got: answers at once, and the ones shed with 503 then retried."""

    answers: list[httpx.Response]
    shed: int


async def deliver_copies(send, copies: int = COPIES) -> Deliveries:
    """`copies` identical deliveries at once, as a gateway would; copies the load-shedding gate
    answered 503 + Retry-After (api/surge.py: 8 in flight per worker, 250 ms in the queue) are
    delivered again afterwards, which is what Twilio and USSD gateways do with a non-2xx."""
    first = await at_once(send, copies)
    shed = [r for r in first if r.status_code == 503]
    for response in shed:
        assert response.headers.get("retry-after"), response.text
    again = [await send() for _ in shed]
    return Deliveries([r for r in first if r.status_code != 503] + again, len(shed))


async def test_sms_complaint_confirmation_ten_times_at_once_files_one(client, registry, db):
    chat = Chat(client, NOT_ELIGIBLE_PHONE)
    await chat.send("LANG EN")
    await chat.send("COMPLAINT no money for two months")
    await chat.send("1")
    form = sms("1", "SMdup-confirm-0001", sender=NOT_ELIGIBLE_PHONE)
    got = await deliver_copies(lambda: client.post(SMS_URL, data=form))
    replies = [reply_text(r) for r in got.answers]
    assert len(set(replies)) == 1 and "is filed" in replies[0]
    assert await count(db, Grievance) == 1
    assert await count(db, InboundMessage, InboundMessage.external_id == "SMdup-confirm-0001") == 1
    figure(
        f"SMS complaint confirmation delivered {COPIES}x concurrently: 1 grievance, "
        f"{len(set(replies))} distinct reply, 1 inbound row "
        f"({got.shed} copies load-shed with 503 and redelivered)"
    )


async def test_sms_code_request_ten_times_at_once_sends_one_code(client, registry, db):
    chat = Chat(client, HELPER_PHONE)
    await chat.send("LANG EN")
    form = sms(f"PAY {ELIGIBLE_WIFE}", "SMdup-pay-0001", sender=HELPER_PHONE)
    got = await deliver_copies(lambda: client.post(SMS_URL, data=form))
    replies = [reply_text(r) for r in got.answers]
    assert len(set(replies)) == 1 and "6-digit code" in replies[0]
    codes = await count(db, OutboundMessage, OutboundMessage.kind == "otp")
    assert codes == 1
    figure(
        f"SMS 'PAY <CNIC>' from a helper delivered {COPIES}x concurrently: {codes} OTP queued, "
        f"{len(set(replies))} distinct reply ({got.shed} load-shed with 503 and redelivered)"
    )


async def test_ussd_final_complaint_step_ten_times_at_once_files_one(client, registry, db):
    session = "ATUid_dup_complaint"
    await client.post(USSD_URL, data=ussd_form("ATUid_dup_lang", ELIGIBLE_PHONE, ""))
    await client.post(USSD_URL, data=ussd_form("ATUid_dup_lang", ELIGIBLE_PHONE, "1"))
    for text in ("", "3", "3*2", "3*2*2"):
        screen_of(await client.post(USSD_URL, data=ussd_form(session, ELIGIBLE_PHONE, text)))
    form = ussd_form(session, ELIGIBLE_PHONE, "3*2*2*1")
    got = await deliver_copies(lambda: client.post(USSD_URL, data=form))
    screens = [screen_of(r) for r in got.answers]
    assert len(set(screens)) == 1 and screens[0].startswith("END ") and "G-" in screens[0]
    assert await count(db, Grievance) == 1
    tickets = await count(db, OutboundMessage, OutboundMessage.kind == "grievance_filed")
    assert tickets == 1
    figure(
        f"USSD last complaint step delivered {COPIES}x concurrently: 1 grievance, {tickets} "
        f"ticket SMS, {len(set(screens))} distinct screen ({got.shed} load-shed, redelivered)"
    )


async def test_rest_code_request_ten_times_at_once_issues_one(client, registry, db):
    got = await deliver_copies(lambda: client.post("/v1/otp", json={"cnic": ELIGIBLE_WIFE}))
    responses = got.answers
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [202] + [429] * (COPIES - 1)
    assert all(r.headers.get("retry-after") for r in responses if r.status_code == 429)
    codes = await count(db, OutboundMessage, OutboundMessage.kind == "otp")
    assert codes == 1
    figure(
        f"POST /v1/otp for one CNIC {COPIES}x concurrently: 1 x 202, {COPIES - 1} x 429 "
        f"(resend cooldown) with Retry-After, {codes} code sent"
    )


async def test_telegram_update_ten_times_at_once_replies_once(tg_client, fake_api, registry):  # noqa: F811
    chat = TelegramChat(tg_client, fake_api)
    update = chat.user.text(ELIGIBLE_WIFE)
    got = await deliver_copies(lambda: post_update(tg_client, update))
    assert {r.status_code for r in got.answers} == {200}
    sent = fake_api.called("sendMessage")
    assert len(sent) == 1
    figure(
        f"Telegram update delivered {COPIES}x concurrently: {len(sent)} message sent "
        f"({got.shed} load-shed, redelivered)"
    )


@pytest.fixture(autouse=True)
def _phones_differ() -> None:
    assert len({ELIGIBLE_PHONE, HELPER_PHONE, NOT_ELIGIBLE_PHONE}) == 3
