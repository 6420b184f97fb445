"""Messages held in a surge (api/held.py): taken when the worker has no room, answered later.

The gate is filled by hand (its slots counted as busy), so nothing here depends on timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from xml.etree import ElementTree

import httpx
import pytest
from prometheus_client import REGISTRY
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import func, select, text
from twilio.request_validator import RequestValidator

from api import held, surge
from api.registry.models import HeldMessage, Household, InboundMessage, OutboundMessage
from api.sealed import PREFIX as SEALED
from api.sealed import sealer_for
from api.settings import get_settings
from bot.dialogue import ussd as menus
from tests.conftest import (
    BASE_URL,
    ELIGIBLE,
    ELIGIBLE_PHONE,
    app_client,
    load_payload,
    running_app,
)
from tests.conftest import sms_form as sms

URL = "/webhooks/twilio/messaging"
#: PUBLIC_BASE_URL, which the signatures are over: where the tests' client reaches the app.
PUBLIC = BASE_URL
TOKEN = "test-auth-token-0123456789abcdef"


def messages_in(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    root = ElementTree.fromstring(response.text)
    assert root.tag == "Response"
    return [m.text or "" for m in root.iter("Message")]


def signed_post(client: httpx.AsyncClient, form: dict[str, str], *, signature: str | None = None):
    validator = RequestValidator(TOKEN)
    headers = {"X-Twilio-Signature": signature or validator.compute_signature(PUBLIC + URL, form)}
    return client.post(URL, data=form, headers=headers)


@pytest.fixture
async def held_app(settings, registry, redis, monkeypatch):
    """The app with Twilio signatures checked, its gate small, and its background answering of
    held messages stopped (each test drains by hand, or restarts it)."""
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("PUBLIC_BASE_URL", PUBLIC)
    monkeypatch.setenv("RABTA_SURGE_MAX_IN_FLIGHT", "2")
    monkeypatch.setenv("RABTA_SURGE_MAX_QUEUE", "0")
    get_settings.cache_clear()
    surge.get_surge_settings.cache_clear()
    async with running_app(get_settings()) as application:
        await application.state.held.stop()
        yield application
    surge.get_surge_settings.cache_clear()
    get_settings.cache_clear()


@pytest.fixture
async def client(held_app) -> httpx.AsyncClient:
    async with app_client(held_app) as http:
        yield http


def gate_of(app) -> surge.Gate:
    gate = app.state.held.gate
    assert gate is not None
    return gate


def busy(gate: surge.Gate) -> None:
    """Every slot taken, as by requests running."""
    gate.in_flight = gate.max_in_flight


def calm(gate: surge.Gate) -> None:
    """The slots free and the overload episode the refused messages started over (it lasts
    one MAX_WAIT: the tests do not wait it out)."""
    gate.in_flight = 0
    gate._shedding_until = float("-inf")


async def held_resends(app, client, *sids: str) -> None:
    """The registered sender's CNIC sent once per MessageSid while every slot is taken: each
    held (200, no reply yet), none answered."""
    gate = gate_of(app)
    busy(gate)
    for sid in sids:
        assert messages_in(await signed_post(client, sms(ELIGIBLE, sid))) == []
    calm(gate)


async def count(db, model, *where) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)))


async def rows(db, model) -> list:
    async with db.sessions() as session:
        return list((await session.scalars(select(model).order_by(model.id))).all())


def held_total(outcome: str, channel: str = "sms") -> float:
    value = REGISTRY.get_sample_value(
        "rabta_held_messages_total", {"channel": channel, "outcome": outcome}
    )
    return value or 0.0


# -- the gate's spare room ----------------------------------------------------------------------


def test_background_work_takes_a_slot_only_with_room_to_spare():
    gate = surge.Gate(max_in_flight=4, max_queue=2, max_wait=1.0, clock=lambda: 0.0, timers=False)
    assert gate.try_take(spare=2) and gate.try_take(spare=2)
    assert not gate.try_take(spare=2)  # a third would leave fewer than two slots free
    gate.release()
    assert gate.try_take(spare=2)
    assert gate.in_flight == 2


def test_no_background_work_while_requests_wait_or_are_refused():
    now = [0.0]
    gate = surge.Gate(
        max_in_flight=2, max_queue=1, max_wait=1.0, clock=lambda: now[0], timers=False
    )
    assert gate.admit() is None and gate.admit() is None
    assert isinstance(gate.admit(), surge._Waiter)
    assert not gate.try_take(spare=0)  # every slot busy, one request waiting
    assert gate.admit() == surge.QUEUE_FULL  # an overload episode begins
    for _ in range(3):
        gate.release()  # the two running requests end, then the one that waited
    assert gate.in_flight == 0 and gate.waiting == 0
    assert not gate.try_take(spare=0)  # every slot free, but the episode lasts one budget
    now[0] += 1.0
    assert gate.try_take(spare=0)


# -- the middleware --------------------------------------------------------------------------


async def test_the_middleware_passes_a_message_it_has_no_room_for_on_to_be_held():
    seen: list[tuple[str, object]] = []
    release = asyncio.Event()

    async def app(scope, receive, send):
        seen.append((scope["path"], scope.get(surge.HOLD)))
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    settings = surge.SurgeSettings(
        RABTA_SURGE_MAX_IN_FLIGHT=1, RABTA_SURGE_MAX_QUEUE=0, RABTA_SURGE_MAX_HOLDING=1
    )
    middleware = surge.LoadShedding(app, settings=settings)
    middleware.gate.in_flight = 1  # as if one request were running
    statuses: list[int] = []

    async def call(path: str) -> None:
        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        scope = {"type": "http", "path": path, "method": "POST", "headers": []}
        await middleware(scope, receive, send)

    first = asyncio.create_task(call(URL))
    await asyncio.sleep(0)
    assert seen == [(URL, surge.QUEUE_FULL)]  # held: on to the app, with why
    await call(URL)  # a second while the first is being held: past MAX_HOLDING, refused
    await call("/webhooks/ussd")  # a USSD session cannot wait for an answer: refused
    assert statuses == [503, 503]
    release.set()
    await first
    assert statuses == [503, 503, 200]
    assert middleware.gate.in_flight == 1  # a held message never took a slot
    middleware.overload.close()  # as the app's lifespan does: no timer left behind


async def test_a_ussd_hit_with_no_room_gets_a_busy_end_screen_not_a_503(held_app, client):
    """A gateway shows a 503 as a network error; a refused USSD hit is told, in the default
    language, that the service is busy and to try again in a few minutes, and ends there."""
    gate = gate_of(held_app)
    busy(gate)
    shed = REGISTRY.get_sample_value(
        "rabta_load_shed_total", {"reason": surge.QUEUE_FULL, "family": "webhooks"}
    )
    form = {"sessionId": "ATUid_busy", "serviceCode": "*8171#", "phoneNumber": ELIGIBLE_PHONE}
    response = await client.post("/webhooks/ussd", data={**form, "text": ""})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    runtime = held_app.state.runtime
    # USSD screens speak the default language in its USSD form (Roman Urdu for Urdu: an
    # Arabic-script screen is UCS-2, and operators do not all render it; bot/dialogue/ussd.py).
    language = menus.ussd_language(runtime.settings.default_language)
    expected = runtime.renderer.render_text(
        "errors/try_later", {}, language=language, channel="ussd"
    )
    assert response.text == "END " + expected and len(response.text) <= 182
    after = REGISTRY.get_sample_value(
        "rabta_load_shed_total", {"reason": surge.QUEUE_FULL, "family": "webhooks"}
    )
    assert after == (shed or 0.0) + 1  # counted as shed all the same
    calm(gate)
    response = await client.post("/webhooks/ussd", data={**form, "text": ""})
    assert response.status_code == 200 and response.text.startswith("CON ")  # the menu


# -- through the webhook ----------------------------------------------------------------------


async def test_a_message_with_no_room_is_held_and_answered_later_through_the_outbox(
    held_app, client, registry
):
    gate = gate_of(held_app)
    busy(gate)
    held_before = held_total("held")
    response = await signed_post(client, sms(ELIGIBLE, "SMheld00001"))
    assert messages_in(response) == []  # 200, an empty <Response/>: no reply yet
    assert await signed_post(client, sms(ELIGIBLE, "SMheld00001")) is not None  # a retry
    [message] = await rows(registry, HeldMessage)
    assert (message.channel, message.external_id, message.phone) == (
        "sms",
        "SMheld00001",
        ELIGIBLE_PHONE,
    )
    assert message.text == ELIGIBLE and message.attempts == 0
    assert held_total("held") == held_before + 2
    assert await count(registry, InboundMessage) == 0
    # While the live traffic needs the slots, nothing held is answered.
    assert await held_app.state.held.drain() is None
    assert await count(registry, HeldMessage) == 1

    calm(gate)
    answered_before = held_total("answered")
    assert await held_app.state.held.drain() == 1
    assert gate.in_flight == 0  # its slots given back
    assert await count(registry, HeldMessage) == 0
    [record] = await rows(registry, InboundMessage)
    assert record.external_id == "SMheld00001" and record.outcome == "eligible"
    [reply] = await rows(registry, OutboundMessage)
    assert (reply.channel, reply.to, reply.kind, reply.priority) == (
        "sms",
        ELIGIBLE_PHONE,
        "reply",
        1,
    )
    assert reply.body == record.reply and "35202-*******-1" in reply.body
    assert reply.dedup_key == "held:sms:SMheld00001"
    assert held_total("answered") == answered_before + 1
    # The same MessageSid again, answered at once now: the stored reply, nothing new.
    assert messages_in(await signed_post(client, sms(ELIGIBLE, "SMheld00001"))) == [reply.body]
    assert await count(registry, OutboundMessage) == 1


async def test_a_forged_message_is_refused_not_held(held_app, client, registry):
    gate = gate_of(held_app)
    busy(gate)
    response = await signed_post(client, sms(ELIGIBLE, "SMheld00002"), signature="forged=")
    assert response.status_code == 403
    bad = sms(ELIGIBLE, "")
    assert (await signed_post(client, bad)).status_code == 400
    assert await count(registry, HeldMessage) == 0


async def test_the_background_answers_what_was_held_once_there_is_room(held_app, client, registry):
    gate = gate_of(held_app)
    busy(gate)
    whatsapp = load_payload("twilio_whatsapp_inbound.json")
    whatsapp.update(Body="HELP", MessageSid="SMheld00003", From=f"whatsapp:{ELIGIBLE_PHONE}")
    assert messages_in(await signed_post(client, whatsapp)) == []
    assert messages_in(await signed_post(client, sms("HELP", "SMheld00004"))) == []
    calm(gate)
    drainer = held.Drainer(held_app.state.runtime, gate, poll_seconds=0.05)
    drainer.start()
    try:
        async with asyncio.timeout(10):  # liveness, not speed: it normally takes milliseconds
            while await count(registry, HeldMessage):
                await asyncio.sleep(0.02)
    finally:
        await drainer.stop()
    replies = {(m.channel, m.to) for m in await rows(registry, OutboundMessage)}
    assert replies == {("whatsapp", ELIGIBLE_PHONE), ("sms", ELIGIBLE_PHONE)}


async def test_an_answer_that_fails_is_tried_again_later_then_given_up(
    held_app, client, registry, monkeypatch
):
    gate = gate_of(held_app)
    busy(gate)
    assert messages_in(await signed_post(client, sms(ELIGIBLE, "SMheld00005"))) == []
    calm(gate)

    async def redis_away(runtime, inbound):
        raise ConnectionError("redis away")

    monkeypatch.setattr("api.conversations.service.receive", redis_away)
    assert await held_app.state.held.drain() == 1
    [message] = await rows(registry, HeldMessage)
    assert message.attempts == 1
    now = dt.datetime.now(dt.UTC)
    assert not await held.claim(registry, limit=4, now=now)  # backing off: 10 s
    assert await held.claim(registry, limit=4, now=now + dt.timedelta(seconds=11))
    # Every try fails: after MAX_ATTEMPTS it is kept, and no longer tried.
    later = now
    for _ in range(held.MAX_ATTEMPTS):
        later += dt.timedelta(hours=1)
        for claimed in await held.claim(registry, limit=4, now=later):
            await held.answer(held_app.state.runtime, claimed)
    [message] = await rows(registry, HeldMessage)
    assert message.attempts == held.MAX_ATTEMPTS
    assert not await held.claim(registry, limit=4, now=later + dt.timedelta(days=1))
    assert (
        await count(registry, InboundMessage) == 0 and await count(registry, OutboundMessage) == 0
    )


async def test_a_message_answered_before_a_crash_is_not_answered_twice(held_app, client, registry):
    gate = gate_of(held_app)
    busy(gate)
    assert messages_in(await signed_post(client, sms(ELIGIBLE, "SMheld00006"))) == []
    calm(gate)
    [first] = await held.claim(registry, limit=4)
    # A worker answered it and died before its reply was enqueued: the lease runs out.
    from api.conversations.service import receive
    from bot.channels.base import Inbound

    inbound = Inbound(
        channel="sms",
        sender=ELIGIBLE_PHONE,
        text=ELIGIBLE,
        message_id="SMheld00006",
        phone=ELIGIBLE_PHONE,
    )
    stored = await receive(held_app.state.runtime, inbound)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=held.LEASE_SECONDS + 1)
    [again] = await held.claim(registry, limit=4, now=later)
    assert again.id == first.id and again.attempts == 2
    assert await held.answer(held_app.state.runtime, again)
    [reply] = await rows(registry, OutboundMessage)
    assert reply.body == stored.text  # the stored reply, replayed
    assert await count(registry, InboundMessage) == 1
    # And should the row come back (a delete lost), the outbox takes the reply once.
    assert messages_in(await signed_post(client, sms(ELIGIBLE, "SMheld00006"))) == [stored.text]
    busy(gate)
    assert messages_in(await signed_post(client, sms(ELIGIBLE, "SMheld00006"))) == []
    calm(gate)
    assert await held_app.state.held.drain() == 1
    assert await count(registry, OutboundMessage) == 1


async def test_a_senders_resends_held_in_a_surge_get_one_reply_between_them(
    held_app, client, registry
):
    """A sender's held messages are answered one after another, in the order they came, so the
    reply cache serves their anxious resends (the same CNIC, bare, dashed or spaced): each is
    recorded, one SMS goes out. Another sender's same CNIC, and the first sender's next
    question, get their own."""
    gate = gate_of(held_app)
    busy(gate)
    dashed = f"{ELIGIBLE[:5]}-{ELIGIBLE[5:12]}-{ELIGIBLE[12]}"
    other = "+923009876543"
    sent = [
        sms(ELIGIBLE, "SMresend001"),
        sms(ELIGIBLE, "SMresend002", sender=other),
        sms(dashed, "SMresend003"),
        sms(f" {ELIGIBLE} ", "SMresend004"),
        sms("HELP", "SMresend005"),
    ]
    for form in sent:
        assert messages_in(await signed_post(client, form)) == []
    calm(gate)
    groups = [[m.external_id for m in g] for g in held.by_sender(await rows(registry, HeldMessage))]
    assert groups == [
        ["SMresend001", "SMresend003", "SMresend004", "SMresend005"],
        ["SMresend002"],
    ]
    answered, already = held_total("answered"), held_total("already_answered")
    drainer = held.Drainer(held_app.state.runtime, None, batch=len(sent))
    assert await drainer.drain() == len(sent)
    assert await count(registry, HeldMessage) == 0
    records = {r.external_id: r for r in await rows(registry, InboundMessage)}
    assert sorted(records) == sorted(form["MessageSid"] for form in sent)  # all on record
    replies = sorted((m.to, m.dedup_key) for m in await rows(registry, OutboundMessage))
    assert replies == [
        (ELIGIBLE_PHONE, "held:sms:SMresend001"),
        (ELIGIBLE_PHONE, "held:sms:SMresend005"),
        (other, "held:sms:SMresend002"),
    ]
    # The resends are on record with the answer the first one got.
    assert (
        records["SMresend003"].reply == records["SMresend004"].reply == records["SMresend001"].reply
    )
    assert held_total("answered") == answered + 3
    assert held_total("already_answered") == already + 2


async def test_a_resend_held_far_behind_the_first_gets_no_second_sms_with_the_same_words(
    held_app, client, registry, redis
):
    """In a long backlog a resend is answered minutes after the first, past the reply cache's
    minute: an SMS with the same words went to that phone for the first, so the resend is
    recorded with them and sends nothing more. Other words (the registry changed) are sent."""
    gate = gate_of(held_app)
    drainer = held.Drainer(held_app.state.runtime, None)

    async def held_then_answered(sid: str) -> None:
        busy(gate)
        assert messages_in(await signed_post(client, sms(ELIGIBLE, sid))) == []
        calm(gate)
        assert await drainer.drain() == 1
        # The backlog between this one and the next takes longer than the reply cache keeps.
        await held_app.state.runtime.cache_writes.flush()  # the entry written behind, first
        async for key in redis.scan_iter(match=f"{surge.KEY_PREFIX}*"):
            await redis.delete(key)

    answered, already = held_total("answered"), held_total("already_answered")
    await held_then_answered("SMbacklog01")
    await held_then_answered("SMbacklog02")
    assert held_total("answered") == answered + 1
    assert held_total("already_answered") == already + 1
    async with registry.transaction() as session:
        household = await session.get(Household, "HH-PB-0001")
        household.pmt_score = 99.0  # no longer eligible: the answer's words change
    await held_then_answered("SMbacklog03")
    replies = sorted((m.dedup_key, m.body) for m in await rows(registry, OutboundMessage))
    assert [key for key, _ in replies] == ["held:sms:SMbacklog01", "held:sms:SMbacklog03"]
    records = {r.external_id: r.reply for r in await rows(registry, InboundMessage)}
    assert records["SMbacklog02"] == records["SMbacklog01"] == replies[0][1]  # the same words
    assert records["SMbacklog03"] == replies[1][1] != replies[0][1]


async def test_two_workers_answering_a_senders_resends_at_once_send_one_sms(
    held_app, client, registry
):
    """Two workers (two replicas) that each claimed one of a sender's resends answer them at
    the same moment: the words are claimed for the phone before either reply is enqueued, so
    one SMS goes out and the other resend is recorded with the same words."""
    await held_resends(held_app, client, "SMtwice001", "SMtwice002")
    runtime = held_app.state.runtime
    first = await held.claim(registry, limit=1)
    second = await held.claim(registry, limit=1)
    assert [m.external_id for m in first + second] == ["SMtwice001", "SMtwice002"]
    answered, already = held_total("answered"), held_total("already_answered")
    assert await asyncio.gather(held.answer(runtime, first[0]), held.answer(runtime, second[0]))
    assert await count(registry, HeldMessage) == 0
    replies = await rows(registry, OutboundMessage)
    assert len(replies) == 1
    records = {r.external_id: r.reply for r in await rows(registry, InboundMessage)}
    assert records["SMtwice001"] == records["SMtwice002"] == replies[0].body
    assert held_total("answered") == answered + 1
    assert held_total("already_answered") == already + 1


async def test_a_held_answer_that_fails_gives_its_words_back(
    held_app, client, registry, redis, monkeypatch
):
    """The words are claimed before the reply's transaction: should it fail, the claim goes
    with it, so a resend answered next sends them, and the failed one's retry then sends
    nothing more."""
    await held_resends(held_app, client, "SMfails001", "SMfails002")
    runtime = held_app.state.runtime
    enqueue = held.enqueue

    async def refused(*args, **kwargs):
        raise ConnectionRefusedError("the database went away")

    monkeypatch.setattr(held, "enqueue", refused)
    [message] = await held.claim(registry, limit=1)
    assert not await held.answer(runtime, message)
    monkeypatch.setattr(held, "enqueue", enqueue)
    # The resend is answered past the reply cache's minute (a long backlog).
    await runtime.cache_writes.flush()
    async for key in redis.scan_iter(match=f"{surge.KEY_PREFIX}*"):
        await redis.delete(key)
    [resend] = await held.claim(registry, limit=1)
    assert resend.external_id == "SMfails002"
    assert await held.answer(runtime, resend)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=held.BACKOFF_CAP_SECONDS + 1)
    [retry] = await held.claim(registry, limit=1, now=later)
    assert retry.external_id == "SMfails001"
    assert await held.answer(runtime, retry)
    assert [m.dedup_key for m in await rows(registry, OutboundMessage)] == ["held:sms:SMfails002"]
    assert await count(registry, HeldMessage) == 0


async def test_an_alphanumeric_sender_is_answered_but_not_written_to(held_app, client, registry):
    gate = gate_of(held_app)
    busy(gate)
    assert messages_in(await signed_post(client, sms("HELP", "SMheld00007", sender="BISP"))) == []
    calm(gate)
    assert await held_app.state.held.drain() == 1
    assert await count(registry, HeldMessage) == 0
    assert await count(registry, InboundMessage) == 1
    assert await count(registry, OutboundMessage) == 0  # no number to send the answer to


async def test_with_shedding_off_leftovers_are_still_answered(held_app, client, registry):
    gate = gate_of(held_app)
    busy(gate)
    assert messages_in(await signed_post(client, sms("HELP", "SMheld00008"))) == []
    drainer = held.Drainer(held_app.state.runtime, None)
    assert await drainer.drain() == 1
    assert await count(registry, HeldMessage) == 0


async def test_the_background_keeps_going_after_a_failed_pass(
    held_app, client, registry, monkeypatch, caplog
):
    gate = gate_of(held_app)
    busy(gate)
    assert messages_in(await signed_post(client, sms("HELP", "SMheld00009"))) == []
    calm(gate)
    real_claim = held.claim
    calls = 0

    async def database_away_once(db, **options):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database away")
        return await real_claim(db, **options)

    monkeypatch.setattr(held, "claim", database_away_once)
    drainer = held.Drainer(held_app.state.runtime, gate, poll_seconds=0.05)
    drainer.start()
    try:
        async with asyncio.timeout(10):  # liveness, not speed
            while await count(registry, HeldMessage):
                await asyncio.sleep(0.02)
    finally:
        await drainer.stop()
    assert calls >= 2
    assert "held messages: database unavailable" in caplog.text
    assert gate.in_flight == 0  # the failed pass gave its slots back


async def test_messages_held_together_are_written_in_one_commit(
    held_app, client, registry, monkeypatch
):
    gate = gate_of(held_app)
    busy(gate)
    groups: list[int] = []
    first_write_may_end = asyncio.Event()
    write = held.Holds._write

    async def counted(self, rows):
        groups.append(len(rows))
        if len(groups) == 1:
            await first_write_may_end.wait()
        await write(self, rows)

    monkeypatch.setattr(held.Holds, "_write", counted)
    first = asyncio.create_task(signed_post(client, sms("HELP", "SMgroup0000")))
    while not groups:  # the first message is written at once, alone
        await asyncio.sleep(0)
    # Five more come while it is being written (one of them a retry of a MessageSid).
    forms = [sms("HELP", f"SMgroup{i:04d}") for i in range(1, 5)] + [sms("HELP", "SMgroup0001")]
    rest = [asyncio.create_task(signed_post(client, form)) for form in forms]
    while len(held_app.state.runtime.holds._rows) < 5:
        await asyncio.sleep(0)
    first_write_may_end.set()
    responses = [await first] + [await task for task in rest]
    assert [messages_in(response) for response in responses] == [[]] * 6
    assert groups == [1, 5]  # the five in one INSERT and one commit
    assert await count(registry, HeldMessage) == 5  # the repeated MessageSid stored once


class DatabaseAway:
    """Stands in for Database: every connection refused."""

    @staticmethod
    def autocommit():
        raise ConnectionError("database away")

    class engine:  # stands in for Database.engine
        @staticmethod
        def begin():
            raise ConnectionError("database away")


class RedisAway:
    """Stands in for the Redis client: every command refused."""

    async def llen(self, *args):
        raise RedisConnectionError("redis away")

    rpush = llen


async def test_with_the_database_and_redis_away_a_group_is_refused_with_503_each(
    held_app, client, registry, monkeypatch
):
    gate = gate_of(held_app)
    busy(gate)
    holds = held_app.state.runtime.holds
    monkeypatch.setattr(holds, "db", DatabaseAway())
    monkeypatch.setattr(holds, "redis", RedisAway())
    # Whether a message goes alone (an autocommit connection) or with others (a transaction),
    # the refusal reaches each of them.
    responses = await asyncio.gather(
        *(signed_post(client, sms("HELP", f"SMaway{i:04d}")) for i in range(3))
    )
    assert [r.status_code for r in responses] == [503, 503, 503]
    assert all(r.headers["retry-after"] for r in responses)
    assert await count(registry, HeldMessage) == 0


async def test_with_the_database_away_held_messages_wait_in_redis_until_it_is_back(
    held_app, client, registry, redis, monkeypatch
):
    """Twilio does not send a message again after a 503: while the database is away a held
    message is kept in Redis, moved into `held_messages` once it is back, and answered."""
    gate = gate_of(held_app)
    busy(gate)
    holds = held_app.state.runtime.holds
    monkeypatch.setattr(holds, "db", DatabaseAway())
    spilled = held_total("spilled")
    forms = [sms(ELIGIBLE, "SMspill0001"), sms("HELP", "SMspill0002", sender="+923009876543")]
    forms.append(forms[0])  # Twilio's retry of the first: kept twice, stored once
    responses = await asyncio.gather(*(signed_post(client, form) for form in forms))
    assert [messages_in(r) for r in responses] == [[], [], []]
    assert held_total("spilled") == spilled + 3
    assert await redis.llen(held.SPILL_KEY) == 3
    assert await count(registry, HeldMessage) == 0
    # Sealed: neither the number nor the CNIC in Redis; nothing in the list the release before
    # sealing reads (it would drop what it cannot read).
    for entry in await redis.lrange(held.SPILL_KEY, 0, -1):
        assert entry.startswith(SEALED) and ELIGIBLE not in entry and "3001234567" not in entry
    assert not await redis.exists(held.EARLIER_SPILL_KEY)
    # Redis keeps at most SPILL_MOST: past that, a 503 again.
    monkeypatch.setattr(held, "SPILL_MOST", 3)
    assert (await signed_post(client, sms("HELP", "SMspill0003"))).status_code == 503
    assert await redis.llen(held.SPILL_KEY) == 3

    monkeypatch.setattr(holds, "db", held_app.state.runtime.db)  # the database is back
    calm(gate)
    drainer = held.Drainer(held_app.state.runtime, None)
    await drainer.unspill()
    assert await redis.llen(held.SPILL_KEY) == 0
    assert sorted(m.external_id for m in await rows(registry, HeldMessage)) == [
        "SMspill0001",
        "SMspill0002",
    ]
    assert await drainer.drain() == 2
    replies = sorted((m.to, m.dedup_key) for m in await rows(registry, OutboundMessage))
    assert replies == [
        (ELIGIBLE_PHONE, "held:sms:SMspill0001"),
        ("+923009876543", "held:sms:SMspill0002"),
    ]


async def test_a_message_whose_answer_meets_a_database_outage_is_held_not_refused(
    held_app, client, registry, redis, monkeypatch
):
    """Not only in a surge: a message the worker had room for, whose answer failed because the
    database went away, is held (here in Redis, the database being away) and answered later."""
    holds = held_app.state.runtime.holds

    async def database_away(runtime, inbound, attempt=None):
        raise ConnectionError("database away")

    monkeypatch.setattr("api.webhooks.twilio.receive", database_away)
    monkeypatch.setattr(holds, "db", DatabaseAway())
    assert messages_in(await signed_post(client, sms(ELIGIBLE, "SMspill0101"))) == []
    assert await redis.llen(held.SPILL_KEY) == 1
    monkeypatch.undo()  # the database is back
    drainer = held.Drainer(held_app.state.runtime, None)
    await drainer.unspill()
    assert await drainer.drain() == 1
    [reply] = await rows(registry, OutboundMessage)
    assert reply.dedup_key == "held:sms:SMspill0101" and "35202-*******-1" in reply.body


@pytest.mark.parametrize("kept_in", ["database", "redis"])
async def test_a_held_message_whose_first_try_counted_its_look_up_is_not_counted_again(
    held_app, client, registry, redis, monkeypatch, kept_in
):
    """The database went away after the look-up's limits were counted (the first statement):
    the message is held, and answered later without counting them a second time. With a
    sender allowed one look-up an hour, that answer is the eligibility, not "try again"."""
    from api.conversations import repository
    from api.ratelimit.service import parse_limit

    runtime = held_app.state.runtime
    monkeypatch.setitem(runtime.rate_limiter._defaults, "sender", parse_limit("1/hour"))
    reading = repository.get_or_create_contact_reading_household

    async def database_away(*args, **kwargs):
        raise ConnectionError("database away")

    monkeypatch.setattr(repository, "get_or_create_contact_reading_household", database_away)
    if kept_in == "redis":
        monkeypatch.setattr(runtime.holds, "db", DatabaseAway())
    assert messages_in(await signed_post(client, sms(ELIGIBLE, "SMcount0001"))) == []
    monkeypatch.setattr(repository, "get_or_create_contact_reading_household", reading)
    monkeypatch.setattr(runtime.holds, "db", runtime.db)  # the database is back
    drainer = held.Drainer(runtime, None)
    await drainer.unspill()
    [message] = await rows(registry, HeldMessage)
    assert message.counted
    assert await drainer.drain() == 1
    [reply] = await rows(registry, OutboundMessage)
    assert "35202-*******-1" in reply.body  # the answer, not "too many requests, try later"
    [record] = await rows(registry, InboundMessage)
    assert (record.external_id, record.outcome) == ("SMcount0001", "eligible")
    # The one look-up an hour is spent: the next one is refused.
    refused = messages_in(await signed_post(client, sms(ELIGIBLE, "SMcount0002")))
    assert refused and "35202-*******-1" not in refused[0]


async def test_a_message_whose_answer_stalls_is_held_in_time_and_answered_later(
    held_app, client, registry, redis, monkeypatch
):
    """A database that stalls instead of refusing (a partition, a lock held too long) must not
    keep Twilio waiting past its 15 s, after which the message would be lost: once
    RABTA_SURGE_ANSWER_WITHIN_MS has passed the message is held, in Redis when the hold's own
    write stalls too, and answered by SMS once the database answers again."""
    if registry.engine.dialect.name != "postgresql":
        pytest.skip("the stall is a PostgreSQL table lock")
    monkeypatch.setenv("RABTA_SURGE_ANSWER_WITHIN_MS", "300")
    surge.get_surge_settings.cache_clear()
    monkeypatch.setattr(held, "WRITE_WITHIN", 0.3)
    spilled = held_total("spilled")
    async with registry.engine.begin() as locker:
        # Every statement that writes a contact or a held message now waits for this lock.
        await locker.execute(text("LOCK TABLE contacts, held_messages IN ACCESS EXCLUSIVE MODE"))
        async with asyncio.timeout(5):  # far less than Twilio's 15 s; the stall is unbounded
            response = await signed_post(client, sms(ELIGIBLE, "SMstall0001"))
        assert messages_in(response) == []
        assert held_total("spilled") == spilled + 1
        assert await redis.llen(held.SPILL_KEY) == 1
    # The lock is gone: the hold's write that waited for it lands as well, so the message is
    # both in `held_messages` and in Redis. Answered from the first, then moved from the second
    # (the worst order: its row is gone by then), it is still answered with one SMS.
    drainer = held.Drainer(held_app.state.runtime, None)
    async with asyncio.timeout(10):  # liveness, not speed
        while not await count(registry, HeldMessage):
            await asyncio.sleep(0.02)
    # The look-up's limits were counted before the stall: its answer does not count them again.
    assert [m.counted for m in await rows(registry, HeldMessage)] == [True]
    assert await drainer.drain() == 1
    await drainer.unspill()
    assert await redis.llen(held.SPILL_KEY) == 0
    assert [m.external_id for m in await rows(registry, HeldMessage)] == ["SMstall0001"]
    assert await drainer.drain() == 1  # a replay: the stored reply, already in the outbox
    assert await count(registry, HeldMessage) == 0
    [reply] = await rows(registry, OutboundMessage)
    assert reply.dedup_key == "held:sms:SMstall0001" and "35202-*******-1" in reply.body
    # The worker's connections came through the cancelled statement: the next message is
    # answered at once, as usual.
    assert messages_in(await signed_post(client, sms(ELIGIBLE, "SMstall0002"))) != []


async def test_one_worker_at_a_time_moves_what_redis_kept(settings, registry, redis, caplog):
    """Two workers moving the kept messages at once store each once; an entry that cannot be
    read is dropped with an error line that shows nothing of it."""
    sealer = sealer_for(settings.secret_key)
    kept = [
        sealer.seal(
            json.dumps(
                {
                    "channel": "sms",
                    "external_id": f"SMkept{i:04d}",
                    "sender": ELIGIBLE_PHONE,
                    "phone": ELIGIBLE_PHONE,
                    "text": "HELP",
                    "now": dt.datetime.now(dt.UTC).isoformat(),
                }
            ),
            where=held.SPILL_KEY,
        )
        for i in range(150)
    ]
    await redis.rpush(held.SPILL_KEY, *kept[:100], "{not json " + ELIGIBLE, *kept[100:])
    moved = await asyncio.gather(held.unspill(registry, redis), held.unspill(registry, redis))
    assert sorted(moved) == [0, 150]  # the second found the first one's lock
    assert await redis.llen(held.SPILL_KEY) == 0
    assert await count(registry, HeldMessage) == 150
    assert "could not be read" in caplog.text and ELIGIBLE not in caplog.text
    assert await held.unspill(registry, redis) == 0  # nothing left: one trip
    assert not await redis.exists(held.UNOPENED_KEY)  # all opened: nothing set aside


async def test_messages_kept_in_clear_by_the_release_before_sealing_are_still_taken_in(
    held_app, client, registry, redis, monkeypatch
):
    """A rolling upgrade: the release before sealing kept messages in clear in its own list
    (`rabta:held:spill`), some from before it kept the look-up's count; they are taken in with
    this release's sealed ones, theirs first (the older), and answered. Nothing of this
    release's is ever written where that release reads."""
    gate = gate_of(held_app)
    earlier = [
        {
            "channel": "sms",
            "external_id": "SMearlier01",
            "sender": ELIGIBLE_PHONE,
            "phone": ELIGIBLE_PHONE,
            "text": ELIGIBLE,
            "now": (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)).isoformat(),
            "counted": False,
            "media": False,
        },
        {  # kept before the count and the media mark went with the message
            "channel": "sms",
            "external_id": "SMearlier02",
            "sender": "+923009876543",
            "phone": "+923009876543",
            "text": "HELP",
            "now": (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=20)).isoformat(),
        },
    ]
    await redis.rpush(held.EARLIER_SPILL_KEY, *(json.dumps(entry) for entry in earlier))
    busy(gate)
    monkeypatch.setattr(held_app.state.runtime.holds, "db", DatabaseAway())
    assert messages_in(await signed_post(client, sms("HELP", "SMsealed001"))) == []
    assert await redis.llen(held.EARLIER_SPILL_KEY) == 2  # this release wrote nothing there
    [entry] = await redis.lrange(held.SPILL_KEY, 0, -1)
    assert entry.startswith(SEALED)
    monkeypatch.undo()
    calm(gate)
    drainer = held.Drainer(held_app.state.runtime, None)
    await drainer.unspill()
    assert not await redis.exists(held.EARLIER_SPILL_KEY, held.SPILL_KEY, held.UNOPENED_KEY)
    taken = [(m.external_id, m.text, m.counted) for m in await rows(registry, HeldMessage)]
    assert taken == [
        ("SMearlier01", ELIGIBLE, False),
        ("SMearlier02", "HELP", False),
        ("SMsealed001", "HELP", False),
    ]
    assert await drainer.drain() == 3
    replies = {m.dedup_key: m.body for m in await rows(registry, OutboundMessage)}
    assert "35202-*******-1" in replies["held:sms:SMearlier01"]
    assert set(replies) == {"held:sms:SMearlier01", "held:sms:SMearlier02", "held:sms:SMsealed001"}


async def test_a_worker_whose_lease_ran_out_leaves_what_it_moved_to_the_next(registry, redis):
    """A write that outlasted the lock's lease: another worker holds the lock by then, so this
    one trims nothing (the next one's INSERT meets the rows already there) and does not release
    the other's lock."""
    now = dt.datetime.now(dt.UTC).isoformat()
    await redis.rpush(
        held.SPILL_KEY,
        *(
            json.dumps(
                {
                    "channel": "sms",
                    "external_id": f"SMslow{i:04d}",
                    "sender": ELIGIBLE_PHONE,
                    "phone": ELIGIBLE_PHONE,
                    "text": "HELP",
                    "now": now,
                }
            )
            for i in range(3)
        ),
    )

    class OutlastsItsLease:
        engine = property(lambda self: self)

        @contextlib.asynccontextmanager
        async def begin(self):
            await redis.set(held.SPILL_LOCK, "another-worker")  # the lease ran out; taken
            async with registry.engine.begin() as connection:
                yield connection

    assert await held.unspill(OutlastsItsLease(), redis) == 0
    assert await redis.llen(held.SPILL_KEY) == 3  # left for the lock's holder
    assert await redis.get(held.SPILL_LOCK) == "another-worker"
    await redis.delete(held.SPILL_LOCK)  # that worker finishes: its rows meet these
    assert await held.unspill(registry, redis) == 3
    assert await count(registry, HeldMessage) == 3 and await redis.llen(held.SPILL_KEY) == 0


async def test_an_operator_sees_the_backlog_and_retries_what_was_given_up(registry):
    assert await held.backlog(registry) == held.Backlog(0, 0, 0, None)
    now = dt.datetime.now(dt.UTC)
    async with registry.transaction() as session:
        for number, attempts in enumerate((0, 0, 3, held.MAX_ATTEMPTS)):
            session.add(
                HeldMessage(
                    channel="sms",
                    external_id=f"SMops{number:04d}",
                    sender=ELIGIBLE_PHONE,
                    phone=ELIGIBLE_PHONE,
                    text="HELP",
                    received_at=now - dt.timedelta(minutes=number),
                    attempts=attempts,
                )
            )
    found = await held.backlog(registry)
    assert (found.waiting, found.retrying, found.given_up) == (2, 1, 1)
    assert found.oldest is not None and abs(found.oldest - (now - dt.timedelta(minutes=3))) < (
        dt.timedelta(seconds=1)
    )
    claimed = await held.claim(registry, limit=10)
    assert sorted(m.external_id for m in claimed) == ["SMops0000", "SMops0001", "SMops0002"]
    assert await held.retry_given_up(registry) == 1
    found = await held.backlog(registry)
    # The given-up one waits again; the three just claimed count as tried.
    assert (found.waiting, found.retrying, found.given_up) == (1, 3, 0)
    assert [m.external_id for m in await held.claim(registry, limit=10)] == ["SMops0003"]


def test_the_held_commands(settings, db):
    from typer.testing import CliRunner

    from api.cli import app
    from api.db import Database

    result = CliRunner().invoke(app, ["held", "stats"])
    assert result.exit_code == 0, result.output
    assert "Nothing is held" in result.output

    async def give_one_up() -> None:
        database = Database.from_settings(settings)
        try:
            async with database.transaction() as session:
                session.add(
                    HeldMessage(
                        channel="sms",
                        external_id="SMops0100",
                        sender=ELIGIBLE_PHONE,
                        phone=ELIGIBLE_PHONE,
                        text="HELP",
                        received_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5),
                        attempts=held.MAX_ATTEMPTS,
                    )
                )
        finally:
            await database.dispose()

    asyncio.run(give_one_up())
    result = CliRunner().invoke(app, ["held", "stats"])
    assert result.exit_code == 0, result.output
    assert "given up after 8 tries:        1" in result.output
    assert "rabta held retry" in result.output
    result = CliRunner().invoke(app, ["held", "retry"])
    assert result.exit_code == 0, result.output
    assert "1 given-up messages will be tried again" in result.output
    result = CliRunner().invoke(app, ["held", "stats"])
    assert "waiting for a worker with room: 1" in result.output

    async def keep_one(keep: bool) -> None:
        from api.redis import connect_redis

        redis = connect_redis(settings)
        try:
            await redis.delete(held.SPILL_KEY)
            if keep:
                await redis.rpush(held.SPILL_KEY, "{}")
        finally:
            await redis.aclose()

    asyncio.run(keep_one(True))
    try:
        result = CliRunner().invoke(app, ["held", "stats"])
        assert result.exit_code == 0, result.output
        assert "kept in Redis while the database was away: 1" in result.output
    finally:
        asyncio.run(keep_one(False))


def voice_note(sid: str) -> dict[str, str]:
    form = load_payload("twilio_whatsapp_inbound.json")
    form.pop("_about", None)
    form.update(
        Body="",
        MessageSid=sid,
        SmsMessageSid=sid,
        SmsSid=sid,
        From=f"whatsapp:{ELIGIBLE_PHONE}",
        MessageType="audio",
        NumMedia="1",
        MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM0/Media/ME0",
        MediaContentType0="audio/ogg",
    )
    return form


async def test_a_voice_note_held_or_kept_in_redis_is_answered_as_a_voice_note(
    held_app, client, registry, redis, monkeypatch
):
    """A voice note held while busy, and one kept in Redis while the database was away, are
    answered later as they would have been at once: 'please type', not the help menu their
    empty text would get."""
    gate = gate_of(held_app)
    busy(gate)
    assert messages_in(await signed_post(client, voice_note("SMvoice0001"))) == []
    holds = held_app.state.runtime.holds
    monkeypatch.setattr(holds, "db", DatabaseAway())
    assert messages_in(await signed_post(client, voice_note("SMvoice0002"))) == []
    assert await redis.llen(held.SPILL_KEY) == 1
    monkeypatch.setattr(holds, "db", held_app.state.runtime.db)
    calm(gate)
    drainer = held.Drainer(held_app.state.runtime, None)
    await drainer.unspill()
    assert [m.media for m in await rows(registry, HeldMessage)] == [True, True]
    assert await drainer.drain() == 2
    # In the default language (a voice note has no letters to guess from), and once: the
    # second would send this phone the same words again.
    [body] = [m.body for m in await rows(registry, OutboundMessage)]
    assert "وائس نوٹ" in body, body
