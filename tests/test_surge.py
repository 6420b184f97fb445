"""Surge behaviour (api/surge.py): the reply cache for resends and the load-shedding gate.

No timing assertions: the gate runs on a fake clock, the cache through the real webhook.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from functools import partial

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select, text

from api import surge
from api.registry.models import Contact, Household, InboundMessage
from bot.channels.base import Reply
from bot.dialogue.keywords import Intent
from bot.dialogue.state import Conversation, Step
from tests.conftest import ELIGIBLE, ELIGIBLE_PHONE, NOT_FOUND, sms_form, twiml_messages

URL = "/webhooks/twilio/messaging"
OTHER_PHONE = "+923219876543"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- the gate -----------------------------------------------------------------------------------


def gate(clock: FakeClock, *, max_in_flight: int = 2, max_queue: int = 2) -> surge.Gate:
    return surge.Gate(
        max_in_flight=max_in_flight, max_queue=max_queue, max_wait=0.25, clock=clock, timers=False
    )


def test_gate_admits_up_to_the_limit_then_queues_then_sheds():
    clock = FakeClock()
    g = gate(clock)
    assert g.admit() is surge.ADMITTED
    assert g.admit() is surge.ADMITTED
    assert g.in_flight == 2
    first, second = g.admit(), g.admit()
    assert isinstance(first, surge._Waiter) and isinstance(second, surge._Waiter)
    assert g.waiting == 2
    assert g.admit() == surge.QUEUE_FULL  # limit reached and the queue is full: 503 at once


def test_release_hands_the_slot_to_the_oldest_waiter():
    clock = FakeClock()
    g = gate(clock)
    g.admit(), g.admit()
    first = g.admit()
    clock.now += 0.1
    second = g.admit()
    g.release()
    assert first.done and first.outcome is surge.ADMITTED
    assert not second.done
    assert g.in_flight == 2 and g.waiting == 1


def test_a_waiter_older_than_the_budget_is_shed_and_newcomers_are_refused_fast():
    clock = FakeClock()
    g = gate(clock)
    g.admit(), g.admit()
    old = g.admit()
    clock.now += 0.3  # more than max_wait (0.25 s)
    assert g.oldest_wait() == pytest.approx(0.3)
    # The next arrival finds the queue stale: the old waiter is shed and so is the newcomer,
    # without being queued (it would only wait the whole budget to be refused).
    assert g.admit() == surge.QUEUE_STALE
    assert old.done and old.outcome == surge.WAITED_TOO_LONG
    assert g.waiting == 0
    clock.now += 0.1  # still within one budget of the expiry: refuse fast
    assert g.admit() == surge.QUEUE_STALE
    clock.now += 0.1  # refused again, still within the budget
    assert g.admit() == surge.QUEUE_STALE
    # One budget after the expiry the episode is over, however many were refused meanwhile:
    # at ordinary load every slot is sometimes busy, and those refusals kept a worker shedding
    # long after one stall. A request that cannot run at once queues again.
    clock.now += 0.06
    assert isinstance(g.admit(), surge._Waiter)


def test_a_sustained_overload_starts_episode_after_episode():
    clock = FakeClock()
    g = gate(clock, max_in_flight=1, max_queue=2)
    assert g.admit() is surge.ADMITTED  # it never finishes: the worker is stuck
    g.admit(), g.admit()
    assert g.admit() == surge.QUEUE_FULL
    clock.now += 0.2
    assert g.admit() == surge.QUEUE_STALE
    clock.now += 0.1  # the budget is over: queue again, and the old waiters expire...
    assert g.admit() == surge.QUEUE_STALE  # ...which starts the next episode at once
    assert g.waiting == 0


def test_a_full_queue_also_starts_an_overload_episode():
    clock = FakeClock()
    g = gate(clock, max_in_flight=1, max_queue=1)
    g.admit()
    waiter = g.admit()
    assert g.admit() == surge.QUEUE_FULL
    g.release()  # the waiter runs, the queue is empty again
    assert waiter.outcome is surge.ADMITTED
    assert g.admit() == surge.QUEUE_STALE  # still overloaded: no queueing for a budget
    clock.now += 0.3
    assert isinstance(g.admit(), surge._Waiter)


def test_release_skips_expired_waiters():
    clock = FakeClock()
    g = gate(clock, max_queue=5)
    g.admit(), g.admit()
    stale = g.admit()
    clock.now += 0.2
    fresh = g.admit()
    clock.now += 0.1  # `stale` has waited 0.3 s, `fresh` 0.1 s
    g.release()
    assert stale.outcome == surge.WAITED_TOO_LONG
    assert fresh.outcome is surge.ADMITTED
    assert g.in_flight == 2


def test_a_free_slot_is_not_taken_past_queued_requests():
    clock = FakeClock()
    g = gate(clock, max_in_flight=1)
    assert g.admit() is surge.ADMITTED
    waiter = g.admit()
    g.release()  # hands the slot to the waiter
    assert waiter.outcome is surge.ADMITTED and g.in_flight == 1
    assert isinstance(g.admit(), surge._Waiter)  # a newcomer queues behind


def test_cancelling_a_waiter_frees_its_place_or_its_slot():
    clock = FakeClock()
    g = gate(clock, max_in_flight=1)
    g.admit()
    queued = g.admit()
    g.cancel(queued)
    assert g.waiting == 0
    admitted = g.admit()
    g.release()  # the slot goes to `admitted`, whose client then disconnects
    assert admitted.outcome is surge.ADMITTED and g.in_flight == 1
    g.cancel(admitted)
    assert g.in_flight == 0


async def test_enter_waits_for_a_slot_and_returns_when_released():
    clock = FakeClock()
    g = gate(clock, max_in_flight=1)
    assert await g.enter() is None
    waiting = asyncio.create_task(g.enter())
    await asyncio.sleep(0)
    assert g.waiting == 1 and not waiting.done()
    g.release()
    assert await waiting is None
    assert g.in_flight == 1


async def _call(middleware, path: str) -> tuple[int, dict[bytes, bytes]]:
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await middleware({"type": "http", "path": path, "method": "GET", "headers": []}, receive, send)
    start = sent[0]
    return start["status"], dict(start["headers"])


async def test_middleware_sheds_with_503_and_retry_after_only_on_its_paths():
    calls: list[str] = []

    async def app(scope, receive, send):
        calls.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    settings = surge.SurgeSettings(
        RABTA_SURGE_MAX_IN_FLIGHT=1,
        RABTA_SURGE_MAX_QUEUE=0,
        RABTA_SURGE_RETRY_AFTER=3,
        RABTA_SURGE_MAX_HOLDING=0,  # no SMS held either (tests/test_held.py)
    )
    middleware = surge.LoadShedding(app, settings=settings)
    middleware.gate.in_flight = 1  # as if one request were running
    status, headers = await _call(middleware, "/webhooks/twilio/messaging")
    assert status == 503 and headers[b"retry-after"] == b"3"
    status, headers = await _call(middleware, "/v1/eligibility/3520212345671")
    assert status == 503 and headers[b"content-type"] == b"application/problem+json"
    assert (await _call(middleware, "/healthz"))[0] == 200  # never shed
    assert calls == ["/healthz"]
    middleware.gate.in_flight = 0
    assert (await _call(middleware, "/v1/eligibility/3520212345671"))[0] == 200
    assert middleware.gate.in_flight == 0  # released after the response
    middleware.overload.close()  # as the app's lifespan does: no timer left behind


async def test_a_v1_read_the_database_stalls_on_is_answered_503_in_time(
    client, registry, answer_within_300_ms
):
    """A database that stalls rather than refusing (a partition, a lock held too long): a
    partner's read is answered 503 with Retry-After once RABTA_SURGE_ANSWER_WITHIN_MS has
    passed, instead of waiting for its client's timeout, and the next read goes on as usual."""
    if registry.engine.dialect.name != "postgresql":
        pytest.skip("the stall is a PostgreSQL table lock")
    late_before = _shed_total(surge.ANSWER_LATE, "v1")
    async with registry.engine.begin() as locker:
        await locker.execute(text("LOCK TABLE persons, households IN ACCESS EXCLUSIVE MODE"))
        async with asyncio.timeout(5):  # the stall itself is unbounded
            response = await client.get(f"/v1/eligibility/{ELIGIBLE}")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == str(surge.get_surge_settings().retry_after)
    assert response.json()["status"] == 503
    assert _shed_total(surge.ANSWER_LATE, "v1") == late_before + 1
    metrics = (await client.get("/metrics")).text
    assert 'route="/v1/eligibility/{cnic}",status="503"' in metrics
    after = await client.get(f"/v1/eligibility/{ELIGIBLE}")
    assert after.status_code == 200 and after.json()["status"] == "eligible"


async def test_a_v1_write_the_database_stalls_on_is_left_to_finish(
    client, registry, answer_within_300_ms
):
    """A write is not called off: its 503 after a commit would have the client send it again
    (a second code, a second grievance). It answers once the database does."""
    if registry.engine.dialect.name != "postgresql":
        pytest.skip("the stall is a PostgreSQL table lock")
    late_before = _shed_total(surge.ANSWER_LATE, "v1")
    async with registry.engine.begin() as locker:
        await locker.execute(text("LOCK TABLE persons, households IN ACCESS EXCLUSIVE MODE"))
        request = asyncio.create_task(client.post("/v1/otp", json={"cnic": ELIGIBLE}))
        await asyncio.sleep(0.6)  # twice the answer's deadline
        assert not request.done()
    async with asyncio.timeout(5):
        response = await request
    assert response.status_code == 202, response.text
    assert _shed_total(surge.ANSWER_LATE, "v1") == late_before


async def test_a_stall_is_logged_as_one_episode_not_a_warning_per_request(
    app, client, registry, answer_within_300_ms, caplog
):
    """What each request met is counted (metrics) and logged at INFO; an operator's WARNINGs
    are two: when the worker's answers start being late, saying what the first one met, and
    when none has been for `quiet` seconds, saying how long it lasted and what was done."""
    if registry.engine.dialect.name != "postgresql":
        pytest.skip("the stall is a PostgreSQL table lock")
    from tests.ussd.conftest import ussd_form

    late = app.state.runtime.late
    late.quiet = 1.0  # longer than the answers' deadline: the late answers come 0.3 s apart
    caplog.set_level(logging.INFO)

    async with registry.engine.begin() as locker:
        await locker.execute(
            text("LOCK TABLE contacts, persons, households IN ACCESS EXCLUSIVE MODE")
        )
        async with asyncio.timeout(10):  # the stall itself is unbounded
            for _ in range(2):
                assert (await client.get(f"/v1/eligibility/{ELIGIBLE}")).status_code == 503
            hit = ussd_form("ATUid_episode", ELIGIBLE_PHONE, "")
            assert (await client.post("/webhooks/ussd", data=hit)).text.startswith("END ")
    over = await _episode_logged(
        caplog,
        "late answers: the database or Redis stalls or is away (first: /v1 503 (no answer in"
        " time)); SMS and WhatsApp messages are held, USSD hits get the busy screen, /v1 reads"
        " and Telegram updates a 503",
        r"late answers over: ([0-9.]+) s; /v1 503 \(no answer in time\): 2,"
        r" USSD busy screen \(no answer in time\): 1",
    )
    assert 0.5 <= float(over.group(1)) < 5, over.string  # from the first late answer to the last
    infos = _lines(caplog, logging.INFO)
    assert infos.count("a /v1 read not answered in time: 503") == 2
    assert sum(m.startswith("ussd hit not answered in time") for m in infos) == 1


async def test_a_database_outage_is_logged_as_the_same_episode(app, client, monkeypatch, caplog):
    """A database that refuses (a restart, a failover) rather than stalls: each request it
    turns into a 503 or a busy screen is an INFO line, not a WARNING or a traceback, and the
    worker's episode of late answers says when it began and, once over, what it did."""
    from api.eligibility import service as eligibility
    from api.webhooks import ussd
    from tests.ussd.conftest import ussd_form

    async def database_away(*args, **kwargs):
        raise ConnectionError("database away")

    monkeypatch.setattr(eligibility, "coarse_eligibility", database_away)
    monkeypatch.setattr(ussd, "answer", database_away)
    app.state.runtime.late.quiet = 0.2
    caplog.set_level(logging.INFO)

    response = await client.get(f"/v1/eligibility/{ELIGIBLE}")
    assert response.status_code == 503 and response.headers["retry-after"]
    hit = ussd_form("ATUid_away", ELIGIBLE_PHONE, "")
    assert (await client.post("/webhooks/ussd", data=hit)).text.startswith("END ")
    await _episode_logged(
        caplog,
        "late answers: the database or Redis stalls or is away (first: 503 (database away));"
        " SMS and WhatsApp messages are held, USSD hits get the busy screen, /v1 reads and"
        " Telegram updates a 503",
        r"late answers over: [0-9.]+ s; 503 \(database away\): 1,"
        r" USSD busy screen \(database away\): 1",
    )
    infos = _lines(caplog, logging.INFO)
    assert "database unavailable on GET /v1/eligibility/35202-*******-1: ConnectionError" in infos
    assert "ussd hit not answered: database away (session ATUid_away)" in infos


async def test_answering_without_redis_is_logged_as_one_episode(app, client, monkeypatch, caplog):
    """Redis away: each message says at INFO what it could not read or keep there, and the
    worker's `redis away` episode is the operator's two WARNINGs."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from api.webhooks.ussd import UssdStore
    from tests.ussd.conftest import ussd_form

    async def redis_away(*args, **kwargs):
        raise RedisConnectionError("redis away")

    app.state.runtime.redis_away.quiet = 0.2
    caplog.set_level(logging.INFO)

    monkeypatch.setattr(UssdStore, "save", redis_away)
    first = await client.post("/webhooks/ussd", data=ussd_form("ATUid_redis", ELIGIBLE_PHONE, ""))
    assert first.text.startswith("CON ")  # answered, its state not kept
    monkeypatch.setattr(UssdStore, "load", redis_away)
    hit = ussd_form("ATUid_redis", ELIGIBLE_PHONE, "1")
    assert (await client.post("/webhooks/ussd", data=hit)).text.startswith("END ")
    await _episode_logged(
        caplog,
        "redis away: answering without what Redis keeps (first: USSD session not saved (the"
        " next step says dial again)); conversations start afresh, USSD sessions end, rate"
        " limits count in each worker",
        r"redis away over: [0-9.]+ s; USSD session not saved \(the next step says dial again\):"
        r" 1, USSD session not read \(busy screen\): 1",
    )
    assert "ussd session state unavailable (Redis)" in _lines(caplog, logging.INFO)


async def _episode_logged(caplog: pytest.LogCaptureFixture, first: str, over: str) -> re.Match[str]:
    """A worker's episode as the operator reads it: one WARNING, exactly `first`, then, once
    the episode is over, a second matching `over` (the match)."""
    warnings = partial(_lines, caplog, logging.WARNING)
    assert warnings() == [first]
    await _until(lambda: len(warnings()) == 2)  # the episode is over
    ended = re.fullmatch(over, warnings()[1])
    assert ended is not None, warnings()
    return ended


def _lines(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    """The messages logged at `level` (WARNING: at WARNING or above)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == level or (level == logging.WARNING and r.levelno > level)
    ]


async def _until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):  # liveness, not speed
        while not condition():
            await asyncio.sleep(0.05)


def _shed_total(reason: str, family: str) -> float:
    return (
        REGISTRY.get_sample_value("rabta_load_shed_total", {"reason": reason, "family": family})
        or 0.0
    )


# -- the reply cache: pure parts ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "material", "intent"),
    [
        ("3520212345671", "cnic:3520212345671", Intent.CNIC),
        ("35202-1234567-1", "cnic:3520212345671", Intent.CNIC),
        ("۳۵۲۰۲-۱۲۳۴۵۶۷-۱", "cnic:3520212345671", Intent.CNIC),
        ("HELP", "help", Intent.HELP),
        ("madad", "help", Intent.HELP),
    ],
)
def test_cache_subject_of_idempotent_messages(text, material, intent):
    subject = surge.cache_subject(text)
    assert subject is not None and subject.material == material and subject.intent is intent


@pytest.mark.parametrize(
    "text", ["PAY", "PAY 3520212345671", "COMPLAINT", "123456", "TRACK G-7K3M9Q", "LANG EN", "2"]
)
def test_personal_and_stateful_messages_are_never_cached(text):
    assert surge.cache_subject(text) is None


def test_only_eligibility_and_help_replies_are_cacheable():
    assert surge.cacheable([Reply("eligibility/eligible", {"cnic": "x"})])
    assert surge.cacheable([Reply("help/menu")])
    assert not surge.cacheable([Reply("errors/rate_limited", {"minutes": 5})])
    assert not surge.cacheable([])
    assert not surge.cacheable([Reply("help/menu"), Reply("otp/sent")])


def test_cache_keys_hide_the_sender_and_the_cnic():
    key = surge.cache_key("secret", "sms", ELIGIBLE_PHONE, f"cnic:{ELIGIBLE}")
    assert ELIGIBLE not in key and ELIGIBLE_PHONE not in key
    assert key != surge.cache_key("secret", "sms", OTHER_PHONE, f"cnic:{ELIGIBLE}")
    assert key != surge.cache_key("secret", "whatsapp", ELIGIBLE_PHONE, f"cnic:{ELIGIBLE}")


def test_expected_language_follows_the_engine():
    def expected(text: str) -> str:
        subject = surge.cache_subject(text)
        assert subject is not None, text
        return surge.expected_language(conversation, subject, "ur")

    conversation = Conversation(channel="sms", address=ELIGIBLE_PHONE)
    assert expected(ELIGIBLE) == "ur"  # no letters, no guess: the default
    assert expected("HELP") == "en"  # a first message in Latin letters
    conversation.guessed_language = "en"
    assert expected(ELIGIBLE) == "en"
    assert expected("madad") == "ur_Latn"
    # A keyword the help text taught keeps a Roman Urdu or Urdu guess (bot.i18n.guess_language),
    # so a resend of HELP in a surge is not served an English menu; "help please" is English.
    conversation.guessed_language = "ur_Latn"
    assert expected("HELP") == "ur_Latn"
    assert expected("help please") == "en"
    conversation.language = "sd"
    assert expected("HELP") == "sd"
    assert surge.is_idle(conversation)
    conversation.step = Step.GRIEVANCE_CNIC
    assert not surge.is_idle(conversation)


# -- the reply cache through the webhook ----------------------------------------------------------


def sms(body: str, sid: str, sender: str = OTHER_PHONE) -> dict[str, str]:
    """An SMS from a phone that is no one's registered mobile, unless `sender` says."""
    return sms_form(body, sid, sender)


def reply_of(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return "".join(twiml_messages(response.text))


async def _make_not_eligible(db) -> None:
    async with db.transaction() as session:
        household = await session.get(Household, "HH-PB-0001")
        household.pmt_score = 99.0


async def _inbound_count(db) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(InboundMessage)))


async def test_a_resend_is_answered_from_the_cache_and_still_recorded(client, registry):
    first = reply_of(await client.post(URL, data=sms(ELIGIBLE, "SMsurge0001")))
    assert "35202-*******-1" in first
    # The registry changes under the cache: a resend within the window still gets the first
    # answer, which shows it came from the cache, not from the registry.
    await _make_not_eligible(registry)
    again = reply_of(await client.post(URL, data=sms("35202-1234567-1", "SMsurge0002")))
    assert again == first
    async with registry.sessions() as session:
        stored = await session.scalar(
            select(InboundMessage).where(InboundMessage.external_id == "SMsurge0002")
        )
    assert stored is not None and stored.reply == first and stored.intent == "cnic"
    assert stored.outcome == "eligible"  # the dashboard counts cached answers too
    # A retry of the cached message's MessageSid gets the same stored reply.
    assert reply_of(await client.post(URL, data=sms(ELIGIBLE, "SMsurge0002"))) == first
    assert await _inbound_count(registry) == 2


async def test_a_question_leaves_no_conversation_in_redis(client, registry, redis):
    """Someone who only asks leaves the look-up counters and the reply cache, no conversation;
    their resend is still served from the cache (a missing conversation is a blank one)."""
    first = reply_of(await client.post(URL, data=sms(ELIGIBLE, "SMsurge0051")))
    assert await redis.keys("rabta:conv:*") == []
    await _make_not_eligible(registry)
    assert reply_of(await client.post(URL, data=sms(ELIGIBLE, "SMsurge0052"))) == first
    assert len(await redis.keys(surge.KEY_PREFIX + "*")) == 1
    # Urdu words make a guess at the language worth remembering: that conversation is kept.
    reply_of(await client.post(URL, data=sms(f"میرا کارڈ {NOT_FOUND}", "SMsurge0053")))
    assert len(await redis.keys("rabta:conv:sms:*")) == 1


def _stored(channel: str = "sms") -> float:
    return (
        REGISTRY.get_sample_value(
            "rabta_surge_reply_cache_total", {"channel": channel, "outcome": "stored"}
        )
        or 0.0
    )


async def test_an_entry_rides_on_the_next_look_up_to_redis(app, client, registry, redis):
    """A look-up whose conversation stays blank leaves its cache entry with the worker, and the
    next look-up's script writes it before reading: a resend from the same phone finds it."""
    writes = app.state.runtime.cache_writes
    writes.delay = 3600  # no timer in this test: only the next look-up writes it
    stored = _stored()
    first = reply_of(await client.post(URL, data=sms(ELIGIBLE, "SMsurge0701")))
    assert len(writes) == 1
    assert await redis.keys(surge.KEY_PREFIX + "*") == []
    assert _stored() == stored, "counted as stored only once written"
    await _make_not_eligible(registry)
    assert reply_of(await client.post(URL, data=sms(ELIGIBLE, "SMsurge0702"))) == first
    assert len(writes) == 0
    (key,) = await redis.keys(surge.KEY_PREFIX + "*")
    assert 0 < await redis.ttl(key) <= 60
    assert _stored() == stored + 1
    # Someone else's look-up carries it just the same.
    reply_of(await client.post(URL, data=sms(ELIGIBLE, "SMsurge0703", ELIGIBLE_PHONE)))
    assert len(writes) == 1
    reply_of(await client.post(URL, data=sms(NOT_FOUND, "SMsurge0704")))
    assert len(await redis.keys(surge.KEY_PREFIX + "*")) == 2  # that one waits in its turn
    assert len(writes) == 1


async def test_an_entry_no_look_up_carries_is_written_by_itself(app, client, registry, redis):
    writes = app.state.runtime.cache_writes
    writes.delay = 0.01
    reply_of(await client.post(URL, data=sms(ELIGIBLE, "SMsurge0801")))
    for _ in range(200):  # written 10 ms later: wait up to 2 s for a slow machine
        if await redis.keys(surge.KEY_PREFIX + "*"):
            break
        await asyncio.sleep(0.01)
    assert len(await redis.keys(surge.KEY_PREFIX + "*")) == 1
    assert len(writes) == 0


async def test_cache_writes_lost_to_redis_are_logged_not_raised(caplog):
    import redis.asyncio as aioredis

    dead = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    writes = surge.CacheWrites(dead, delay=3600)
    try:
        writes.add(surge.CacheEntry("sms", surge.KEY_PREFIX + "x", "{}", 60))
        await writes.flush()
        assert len(writes) == 0
        assert "1 entries not written" in caplog.text
    finally:
        await dead.aclose()


async def test_another_sender_or_another_cnic_is_not_served_from_the_cache(client, registry):
    reply_of(await client.post(URL, data=sms(ELIGIBLE, "SMsurge0101")))
    other = reply_of(await client.post(URL, data=sms(ELIGIBLE, "SMsurge0102", ELIGIBLE_PHONE)))
    assert "35202-*******-1" in other
    not_found = reply_of(await client.post(URL, data=sms(NOT_FOUND, "SMsurge0103")))
    assert "61101-*******-7" in not_found


async def test_a_conversation_in_a_flow_is_not_answered_from_the_cache(client, registry):
    reply_of(await client.post(URL, data=sms(ELIGIBLE, "SMsurge0201")))
    asked = reply_of(await client.post(URL, data=sms("COMPLAINT", "SMsurge0202")))
    # The same CNIC now answers the complaint flow's question: not the cached eligibility reply.
    answered = reply_of(await client.post(URL, data=sms(ELIGIBLE, "SMsurge0203")))
    assert answered != reply_of(await client.post(URL, data=sms(ELIGIBLE, "SMsurge0201")))
    assert asked != answered


async def test_a_language_change_is_not_hidden_by_the_cache(client, registry):
    urdu = reply_of(await client.post(URL, data=sms(ELIGIBLE, "SMsurge0301")))
    reply_of(await client.post(URL, data=sms("LANG EN", "SMsurge0302")))
    english = reply_of(await client.post(URL, data=sms(ELIGIBLE, "SMsurge0303")))
    assert english != urdu and "eligible" in english


async def test_resends_count_against_the_senders_limit(client, registry, monkeypatch):
    from api.settings import get_settings

    # 10/hour by default: the 11th look-up is refused even when it would be a cache hit.
    replies = [
        reply_of(await client.post(URL, data=sms(ELIGIBLE, f"SMsurge04{n:02d}"))) for n in range(11)
    ]
    assert len(set(replies[:10])) == 1
    assert replies[10] != replies[0]
    assert get_settings().limit_sender == "10/hour"


async def test_each_message_counts_a_look_up_once(app, client, registry):
    """A look-up counts the sender's and the CNIC's limits; a resend served from the cache, the
    sender's alone (counted with the cache's read); a cached answer that does not serve (the
    resend is written in another language) the sender's once, not twice, and the CNIC's."""
    limiter = app.state.runtime.rate_limiter

    async def used() -> tuple[int, int]:
        sender = await limiter.test("sender", OTHER_PHONE)
        cnic = await limiter.test("cnic", ELIGIBLE)
        return sender.limit - sender.remaining, cnic.limit - cnic.remaining

    first = reply_of(await client.post(URL, data=sms(ELIGIBLE, "SMsurge0601")))
    assert await used() == (1, 1)
    assert reply_of(await client.post(URL, data=sms(ELIGIBLE, "SMsurge0602"))) == first
    assert await used() == (2, 1)
    english = reply_of(await client.post(URL, data=sms(f"my card {ELIGIBLE}", "SMsurge0603")))
    assert english != first and "is eligible" in english
    assert await used() == (3, 2)


async def test_the_cache_can_be_turned_off(client, registry, monkeypatch):
    """Off, every look-up is answered afresh, still through the look-up lane: nothing claims
    its MessageSid first."""
    from api.conversations import repository

    async def no_claim(*args, **kwargs):
        raise AssertionError("a look-up in an idle conversation was claimed first")

    monkeypatch.setattr(repository, "claim_inbound", no_claim)
    monkeypatch.setenv("RABTA_SURGE_REPLY_CACHE_SECONDS", "0")
    surge.get_surge_settings.cache_clear()
    try:
        reply_of(await client.post(URL, data=sms(ELIGIBLE, "SMsurge0501")))
        await _make_not_eligible(registry)
        again = reply_of(await client.post(URL, data=sms(ELIGIBLE, "SMsurge0502")))
        assert "35202-*******-1" in again and again != reply_of(
            await client.post(URL, data=sms(ELIGIBLE, "SMsurge0501"))
        )
    finally:
        surge.get_surge_settings.cache_clear()
    async with registry.sessions() as session:
        contacts = await session.scalar(select(func.count()).select_from(Contact))
    assert contacts == 1


async def test_an_overload_is_logged_when_it_starts_and_when_it_is_over(caplog):
    """Two lines per overload, not one per request: a WARNING at the first request turned
    away, and how long it lasted and what it turned away once `quiet` seconds have passed with
    none turned away, whether requests go on or stop, or when the worker stops."""

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    settings = surge.SurgeSettings(
        RABTA_SURGE_MAX_IN_FLIGHT=1, RABTA_SURGE_MAX_QUEUE=0, RABTA_SURGE_MAX_HOLDING=1
    )
    # Its own logger: other apps' overloads in this session are not this one's.
    name = "api.surge.overload_test"
    overload = surge.Overload(quiet=0.2, logger=logging.getLogger(name))
    middleware = surge.LoadShedding(app, settings=settings, overload=overload)
    caplog.set_level(logging.INFO, logger=name)

    def lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == name]

    try:
        middleware.gate.in_flight = 1
        for _ in range(3):
            assert (await _call(middleware, "/v1/eligibility/3520212345671"))[0] == 503
            await asyncio.sleep(0.05)
        assert (await _call(middleware, "/webhooks/twilio/messaging"))[0] == 200  # held
        middleware.gate.in_flight = 0
        assert (await _call(middleware, "/v1/eligibility/3520212345671"))[0] == 200
        await asyncio.sleep(0.1)
        assert [line[:9] for line in lines()] == ["overload:"], "not over yet"
        await asyncio.sleep(0.25)
        assert len(lines()) == 2
        lasted = re.fullmatch(
            r"overload over: ([0-9.]+) s; refused \(503\): 3, held \(answered by SMS\): 1",
            lines()[1],
        )
        assert lasted is not None, lines()
        assert 0.1 <= float(lasted.group(1)) <= 0.5, lines()  # the first refusal to the last
        assert all(r.levelno == logging.WARNING for r in caplog.records if r.name == name)
        # The next overload is logged again, and reported when the worker stops under it.
        middleware.gate.in_flight = 1
        assert (await _call(middleware, "/v1/eligibility/3520212345671"))[0] == 503
        assert [line[:9] for line in lines()][2:] == ["overload:"]
    finally:
        overload.close()
    assert lines()[3:] == [
        "overload over: 0.0 s; refused (503): 1, held (answered by SMS): 0 (the worker is stopping)"
    ]
    overload.close()  # twice: nothing more
    assert len(lines()) == 4
