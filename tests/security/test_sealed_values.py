"""Sealed values in Redis (api/sealed.py): a value that does not open is taken as expired.

What Redis keeps about a person is sealed under the secret key, for the key it is stored under.
Whatever does not open (sealed under a secret key since rotated, altered, moved from another
key, or written in clear by the release before sealing) is answered as if it had expired: the
same answer as for nothing stored, never a 500. The console's call records, grants, override
requests and the words of its forms kept for their agent likewise (the call has ended, the
request is no more, the record is closed, nothing comes back). A message kept in Redis while the
database was away is the exception: one that does not open is set aside, never dropped, until a
worker with the secret key it was sealed under takes it in."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from contextlib import AbstractAsyncContextManager

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from api import held
from api.registry.models import HeldMessage, OutboundMessage
from api.sealed import PREFIX, Sealer, sealer_for
from bot.dialogue.ussd import UssdStore
from tests.agent.conftest import (  # noqa: F401 - fixtures
    cheap_hashes,
    csrf_token,
    new_client,
    post_form,
    staff,
)
from tests.agent.test_callers import open_lookup, verified
from tests.agent.test_grievances import file, textarea
from tests.agent.test_unsent import idle_out, sign_in_again
from tests.api.test_sms_payments import HELPER_PHONE, Chat
from tests.conftest import (
    ELIGIBLE,
    ELIGIBLE_PHONE,
    ELIGIBLE_WIFE,
    NOT_ELIGIBLE_PHONE,
    app_client,
    running_app,
)
from tests.otp.test_rest_verification import code_for, login
from tests.security.test_redis_privacy import database_away_for_holds
from tests.test_held import held_total
from tests.ussd.conftest import Dial

ROTATED = "a-secret-key-since-rotated-0123456789"
KINDS = ("tampered", "rotated", "moved", "in clear")


def tampered(sealed: str) -> str:
    """`sealed` with one character of its ciphertext changed."""
    at = len(sealed) // 2
    return sealed[:at] + ("A" if sealed[at] != "A" else "B") + sealed[at + 1 :]


def spoilt(kind: str, sealed: str, *, plain: str, where: str, secret: str) -> str:
    """What Redis might hold at `where` instead of `sealed`, the sealing of `plain`."""
    if kind == "tampered":
        return tampered(sealed)
    if kind == "rotated":
        return sealer_for(ROTATED).seal(plain, where=where)
    if kind == "moved":  # sealed for another key
        return sealer_for(secret).seal(plain, where=where + "x")
    return plain  # as the release before sealing kept it


# -- the sealer ---------------------------------------------------------------------------------


def test_a_sealed_value_opens_only_with_its_key_and_its_place():
    sealer = Sealer("sealing-test-secret-0123456789")
    sealed = sealer.seal("3520212345671", where="rabta:token:a")
    assert sealed.startswith(PREFIX) and "3520212345671" not in sealed
    assert sealer.seal("3520212345671", where="rabta:token:a") != sealed  # a fresh nonce
    assert sealer.unseal(sealed, where="rabta:token:a") == "3520212345671"
    assert sealer.unseal(sealed.encode(), where="rabta:token:a") == "3520212345671"
    assert sealer.unseal(sealed, where="rabta:token:b") is None  # moved
    assert Sealer("another-secret-0123456789").unseal(sealed, where="rabta:token:a") is None
    assert sealer.unseal(tampered(sealed), where="rabta:token:a") is None
    for stored in (None, "", "3520212345671", '{"step": "idle"}', PREFIX, PREFIX + "!!", "s1.x"):
        assert sealer.unseal(stored, where="rabta:token:a") is None, stored


# -- through the app ----------------------------------------------------------------------------


async def test_a_conversation_that_does_not_open_is_taken_as_expired(client, app, registry):
    """A registered phone complaining, asked what about (the conversation holds the CNIC): with
    the conversation spoilt, its "1" is answered as after the conversation expired, and the
    spoilt value is replaced."""
    runtime = app.state.runtime
    redis, secret = runtime.redis, runtime.settings.secret_key
    chat = Chat(client, ELIGIBLE_PHONE)
    key = runtime.conversations.key("sms", ELIGIBLE_PHONE)
    await chat.send("LANG EN")
    await chat.send("COMPLAINT")
    await chat.send("1")  # which of the phone's two people: remembered on its contact

    async def asked_what_about() -> None:
        await redis.delete(key)  # each round from a fresh conversation
        assert "What is the complaint about?" in await chat.send("COMPLAINT")

    await asked_what_about()
    in_flow = await chat.send("1")
    await asked_what_about()
    await redis.delete(key)  # what its expiry does
    expired = await chat.send("1")
    assert expired != in_flow
    for kind in KINDS:
        await asked_what_about()
        sealed = await redis.get(key)
        plain = runtime.conversations._sealer.unseal(sealed, where=key)
        assert plain is not None and json.loads(plain)["data"]["cnic"] == ELIGIBLE
        await redis.set(key, spoilt(kind, sealed, plain=plain, where=key, secret=secret))
        assert await chat.send("1") == expired, kind
        now = await redis.get(key)  # what did not open is gone: replaced, or deleted
        assert now is None or runtime.conversations._sealer.unseal(now, where=key), kind
    await asked_what_about()
    assert await chat.send("1") == in_flow  # and the flow itself still works


async def test_a_verified_conversation_moved_to_another_sender_verifies_nobody(
    client, app, settings, registry
):
    """Someone who can write to Redis copies a verified conversation under their own key: it
    does not open there, so they are asked for a code like anyone else."""
    runtime = app.state.runtime
    helper, other = Chat(client, HELPER_PHONE), Chat(client, "+923331112222")
    await helper.send("LANG EN")
    await helper.send(f"PAY {ELIGIBLE_WIFE}")
    code = await code_for(app, settings, ELIGIBLE_PHONE)
    assert "Rs 13,500" in await helper.send(code)
    await other.send("LANG EN")
    verified = await runtime.redis.get(runtime.conversations.key("sms", HELPER_PHONE))
    await runtime.redis.set(runtime.conversations.key("sms", "+923331112222"), verified)
    answer = await other.send(f"PAY {ELIGIBLE_WIFE}")
    assert "Rs 13,500" not in answer and "35202-*******-2" in answer
    assert "Rs 13,500" in await helper.send(f"PAY {ELIGIBLE_WIFE}")  # hers still opens


async def test_a_ussd_session_that_does_not_open_has_ended(client, app, registry):
    """A session left on the code screen (its path holds the CNIC typed): spoilt, its next hit
    is told the session ended, as when it expired."""
    redis = app.state.runtime.redis
    sealer = sealer_for(app.state.runtime.settings.secret_key)
    secret = app.state.runtime.settings.secret_key

    english = Dial(client, HELPER_PHONE)
    await english.dial()
    await english.send("1")  # remembered on the phone's contact: the next dials skip it

    async def on_the_code_screen() -> tuple[Dial, str]:
        phone = Dial(client, HELPER_PHONE)
        await phone.dial()
        assert "not registered" in await phone.send("2")
        return phone, UssdStore.key(phone.session_id)

    phone, key = await on_the_code_screen()
    await redis.delete(key)  # what its expiry does
    expired = await phone.send("0")
    assert expired.startswith("END ")
    for kind in KINDS:
        phone, key = await on_the_code_screen()
        sealed = await redis.get(key)
        plain = sealer.unseal(sealed, where=key)
        assert plain is not None and json.loads(plain)["last_text"] == "2"
        await redis.set(key, spoilt(kind, sealed, plain=plain, where=key, secret=secret))
        assert await phone.send("0") == expired, kind
    phone, _ = await on_the_code_screen()
    assert (await phone.send("0")).startswith("CON ")  # unspoilt, the session goes on


async def test_a_token_that_does_not_open_is_no_token(client, app, settings, registry):
    redis, secret = app.state.runtime.redis, app.state.runtime.settings.secret_key
    token = await login(client, app, settings, ELIGIBLE, ELIGIBLE_PHONE)
    bearer = {"Authorization": f"Bearer {token}"}
    (key,) = await redis.keys("rabta:token:*")
    sealed = await redis.get(key)
    for kind in KINDS:
        await redis.set(key, spoilt(kind, sealed, plain=ELIGIBLE, where=key, secret=secret))
        me = await client.get("/v1/me", headers=bearer)
        assert me.status_code == 401, (kind, me.text)
        assert me.headers["content-type"].startswith("application/problem+json")
    await redis.set(key, sealed)
    assert (await client.get("/v1/me", headers=bearer)).status_code == 200


async def test_an_otp_request_that_does_not_open_has_expired(client, app, settings, registry):
    """The right code for a request whose CNIC does not open: "expired" (401), no token."""
    redis, secret = app.state.runtime.redis, app.state.runtime.settings.secret_key
    asked = await client.post("/v1/otp", json={"cnic": ELIGIBLE})
    request_id = asked.json()["request_id"]
    code = await code_for(app, settings, ELIGIBLE_PHONE)
    (key,) = await redis.keys("rabta:otp:req:*")
    fields = await redis.hgetall(key)
    for kind in KINDS:
        spoilt_cnic = spoilt(kind, fields["cnic"], plain=ELIGIBLE, where=key, secret=secret)
        await redis.hset(key, "cnic", spoilt_cnic)
        if kind == "in clear":  # the release before sealing kept no keyed hash either
            await redis.hdel(key, "who")
        answer = await client.post("/v1/otp/verify", json={"request_id": request_id, "code": code})
        assert answer.status_code == 401, (kind, answer.text)
        assert "expired" in answer.json()["detail"]
    await redis.hset(key, mapping={"cnic": fields["cnic"], "who": fields["who"]})
    answer = await client.post("/v1/otp/verify", json={"request_id": request_id, "code": code})
    assert answer.status_code == 200, answer.text


def restarted_with(monkeypatch, secret: str) -> AbstractAsyncContextManager[FastAPI]:
    """The app started anew (a worker restarted) with `secret` as RABTA_SECRET_KEY."""
    from api.settings import get_settings

    monkeypatch.setenv("RABTA_SECRET_KEY", secret)
    get_settings.cache_clear()
    return running_app(get_settings())


async def test_a_rotated_secret_key_ends_sessions_and_tokens_without_errors(
    client, app, settings, registry, monkeypatch
):
    """The secret key changes and the API restarts: what the old key sealed is not read, and
    nobody gets an error; a USSD session is told to dial again, a token is refused (401)."""
    token = await login(client, app, settings, ELIGIBLE, ELIGIBLE_PHONE)
    phone = Dial(client, HELPER_PHONE)
    await phone.dial()
    await phone.send("1")
    await phone.send("2")
    async with (
        restarted_with(monkeypatch, ROTATED) as restarted,
        app_client(restarted) as after,
    ):
        phone.client = after
        assert await phone.send("0") == "END This session has ended. Please dial again."
        me = await after.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 401
        # New sessions and tokens work under the new key.
        assert (await after.post("/v1/otp", json={"cnic": ELIGIBLE_WIFE})).status_code == 202
        fresh = Dial(after, HELPER_PHONE)
        await fresh.dial()
        assert (await fresh.send("1")).startswith("CON ")


@pytest.mark.parametrize("secret", ["short", "a-much-longer-secret-key-" * 4])
def test_any_secret_key_seals(secret):
    sealer = Sealer(secret)
    assert sealer.unseal(sealer.seal("x", where="k"), where="k") == "x"


async def test_a_rolling_upgrade_from_the_release_before_sealing(client, app, settings, registry):
    """Both releases side by side: a code and a token of the earlier release (a CNIC in clear,
    under the key it gave them) are "expired" and a 401 here; and it finds none of this
    release's under those keys, so it never reads a sealed value as a CNIC (it would store it
    as one: an error)."""
    import hashlib

    redis, otp = app.state.runtime.redis, app.state.runtime.otp
    earlier_token = "rbt.the-release-before-sealing-issued-this"
    earlier_key = "rabta:token:" + hashlib.sha256(earlier_token.encode()).hexdigest()
    await redis.set(earlier_key, ELIGIBLE, ex=900)
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {earlier_token}"})
    assert me.status_code == 401
    await redis.hset(
        "rabta:otp:req:" + otp._digest("earlier-request")[:40],
        mapping={"cnic": ELIGIBLE, "hash": otp._digest("123456"), "tries": 0},
    )
    answer = await client.post(
        "/v1/otp/verify", json={"request_id": "earlier-request", "code": "123456"}
    )
    assert answer.status_code == 401 and "expired" in answer.json()["detail"]

    token = await login(client, app, settings, ELIGIBLE, ELIGIBLE_PHONE)
    assert not await redis.exists("rabta:token:" + hashlib.sha256(token.encode()).hexdigest())
    asked = await client.post("/v1/otp", json={"cnic": ELIGIBLE_WIFE})
    request_id = asked.json()["request_id"]
    assert not await redis.exists("rabta:otp:req:" + otp._digest(request_id)[:40])
    assert await otp.request_cnic(request_id) == ELIGIBLE_WIFE  # it is there, under its own


# -- the agents' console ------------------------------------------------------------------------


async def spoil_value(redis, key: str, kind: str, secret: str) -> str:
    """Spoil the sealed string at `key` (`kind` of `KINDS`); what was there, to put back."""
    sealed = await redis.get(key)
    plain = sealer_for(secret).unseal(sealed, where=key)
    assert plain is not None, key
    await redis.set(key, spoilt(kind, sealed, plain=plain, where=key, secret=secret), keepttl=True)
    return sealed


async def spoil_list(redis, key: str, kind: str, secret: str) -> None:
    """Spoil every sealed entry of the list at `key`."""
    sealer = sealer_for(secret)
    entries = await redis.lrange(key, 0, -1)
    assert entries, key
    ttl = await redis.ttl(key)
    await redis.delete(key)
    for sealed in entries:
        plain = sealer.unseal(sealed, where=key)
        assert plain is not None, key
        await redis.rpush(key, spoilt(kind, sealed, plain=plain, where=key, secret=secret))
    await redis.expire(key, ttl)


async def the_key(redis, pattern: str) -> str:
    (key,) = await redis.keys(pattern)
    return key


async def test_a_call_record_that_does_not_open_has_ended(
    new_client,  # noqa: F811
    staff,  # noqa: F811
    registry,
    app,
):
    """The CNIC an agent searched, spoilt: the call has ended (the page an expired call gets, a
    404), and searching again opens a new one."""
    redis, secret = app.state.runtime.redis, app.state.runtime.settings.secret_key
    amina = await new_client("amina")

    async def shown(lookup: str) -> tuple[int, str]:
        """The page of a lookup, its own id taken out (the page's links name its path)."""
        page = await amina.get(lookup)
        return page.status_code, page.text.replace(lookup.rsplit("/", 1)[1], "ID")

    lookup = await open_lookup(amina)
    await redis.delete("rabta:agent:sealed:lookup:" + lookup.rsplit("/", 1)[1])  # its expiry
    expired = await shown(lookup)
    assert expired[0] == 404 and "This call has ended" in expired[1]
    for kind in KINDS:
        lookup = await open_lookup(amina)
        key = "rabta:agent:sealed:lookup:" + lookup.rsplit("/", 1)[1]
        await spoil_value(redis, key, kind, secret)
        assert await shown(lookup) == expired, kind
    assert (await amina.get(await open_lookup(amina))).status_code == 200


async def test_a_grant_that_does_not_open_closes_the_record(
    new_client,  # noqa: F811
    staff,  # noqa: F811
    registry,
    app,
):
    redis, secret = app.state.runtime.redis, app.state.runtime.settings.secret_key
    amina = await new_client("amina")
    lookup = await verified(amina, registry)
    key = await the_key(redis, "rabta:agent:sealed:grant:*")
    for kind in KINDS:
        sealed = await spoil_value(redis, key, kind, secret)
        page = await amina.get(lookup)
        assert page.status_code == 200, kind
        assert "Nasreen" not in page.text and "Send code" in page.text, kind
        await redis.set(key, sealed, keepttl=True)
        assert "Nasreen Bibi" in (await amina.get(lookup)).text  # unspoilt, open again


async def test_an_override_request_that_does_not_open_is_no_more(
    new_client,  # noqa: F811
    staff,  # noqa: F811
    registry,
    app,
):
    """Spoilt, a request is not in the supervisors' queue, approving it answers that it was
    decided or has expired, and the agent's page still shows (closed)."""
    redis, secret = app.state.runtime.redis, app.state.runtime.settings.secret_key
    amina, sadia = await new_client("amina"), await new_client("sadia")
    for kind in KINDS:
        reason = f"Caller's phone was stolen at the bus stand ({kind})"
        lookup = await open_lookup(amina)
        await post_form(amina, lookup, f"{lookup}/override-request", {"reason": reason})
        queue = (await sadia.get("/agent/overrides")).text
        assert reason.replace("'", "&#39;") in queue
        (key,) = [k for k in await redis.keys("rabta:agent:sealed:override:*")]
        await spoil_value(redis, key, kind, secret)
        queue = (await sadia.get("/agent/overrides")).text
        assert "bus stand" not in queue, kind
        request_id = key.rsplit(":", 1)[1]
        approve = f"/agent/overrides/{request_id}/approve"
        decided = await post_form(sadia, "/agent/overrides", approve, {})
        assert decided.status_code == 303, kind
        assert "already decided or has expired" in (await sadia.get("/agent/overrides")).text
        page = await amina.get(lookup)
        assert page.status_code == 200 and "Nasreen" not in page.text, kind
        await redis.delete(key)
    # Unspoilt, a request is approved and opens the record.
    lookup = await open_lookup(amina)
    await post_form(amina, lookup, f"{lookup}/override-request", {"reason": "Phone stolen, FIR"})
    key = await the_key(redis, "rabta:agent:sealed:override:*")
    approve = f"/agent/overrides/{key.rsplit(':', 1)[1]}/approve"
    assert (await post_form(sadia, "/agent/overrides", approve, {})).status_code == 303
    assert "Nasreen Bibi" in (await amina.get(lookup)).text


async def test_a_refused_forms_words_that_do_not_open_come_back_as_nothing(
    new_client,  # noqa: F811
    staff,  # noqa: F811
    registry,
    app,
):
    redis, secret = app.state.runtime.redis, app.state.runtime.settings.secret_key
    amina = await new_client("amina")
    lookup = await verified(amina, registry)
    description = "Retailer at Ichhra kept Rs 500 of the tranche"
    refused = {"category": "", "description": description, "language": "ur"}
    for kind in KINDS:
        await post_form(amina, lookup, f"{lookup}/grievances", refused)
        await spoil_list(
            redis, await the_key(redis, "rabta:agent:session:*:sealed:flash"), kind, secret
        )
        page = await amina.get(lookup)
        assert page.status_code == 200, kind
        assert textarea(page.text, "description") == "", kind
        assert "Choose the kind of grievance." not in page.text, kind
    await post_form(amina, lookup, f"{lookup}/grievances", refused)
    assert textarea((await amina.get(lookup)).text, "description") == description


async def test_a_form_kept_after_its_session_ended_that_does_not_open_gives_nothing_back(
    new_client,  # noqa: F811
    staff,  # noqa: F811
    registry,
    settings,
    app,
):
    redis, secret = app.state.runtime.redis, app.state.runtime.settings.secret_key
    ticket = await file(registry, settings)
    page = f"/agent/grievances/{ticket}"
    note = "Visit the Shadman office on Monday"
    sadia = await new_client("sadia")
    for kind in (*KINDS, None):
        token = csrf_token((await sadia.get(page)).text)
        await idle_out(app, sadia)
        sent = await sadia.post(f"{page}/notes", data={"note": note, "csrf_token": token})
        assert sent.status_code == 303
        if kind is not None:
            await spoil_value(redis, await the_key(redis, "*:sealed:unsent"), kind, secret)
        await sign_in_again(sadia, sent, "sadia")
        back = await sadia.get(page)
        assert back.status_code == 200, kind
        assert textarea(back.text, "caller-note") == ("" if kind else note), kind


async def test_a_rolling_upgrade_and_the_consoles_values(
    new_client,  # noqa: F811
    staff,  # noqa: F811
    registry,
    app,
):
    """The release before sealing kept a call record in clear under `rabta:agent:lookup:<id>`:
    this release does not read it (the call has ended), and keeps its own elsewhere, so that
    release never reads a sealed one as JSON (an error there)."""
    redis = app.state.runtime.redis
    amina = await new_client("amina")
    earlier = {"id": "earlier-release-lookup", "agent": "amina", "cnic": ELIGIBLE_WIFE}
    await redis.set("rabta:agent:lookup:earlier-release-lookup", json.dumps(earlier), ex=60)
    assert (await amina.get("/agent/callers/earlier-release-lookup")).status_code == 404
    lookup_id = (await open_lookup(amina)).rsplit("/", 1)[1]
    assert not await redis.exists(f"rabta:agent:lookup:{lookup_id}")
    assert await redis.exists(f"rabta:agent:sealed:lookup:{lookup_id}")


# -- messages kept in Redis while the database was away -----------------------------------------


def kept_message(sid: str, text: str = "HELP") -> str:
    """A message as `Holds._spill` keeps it, before sealing."""
    return json.dumps(
        {
            "channel": "sms",
            "external_id": sid,
            "sender": NOT_ELIGIBLE_PHONE,
            "phone": NOT_ELIGIBLE_PHONE,
            "text": text,
            "now": dt.datetime.now(dt.UTC).isoformat(),
            "counted": False,
            "media": False,
        }
    )


async def held_count(db) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(HeldMessage)) or 0)


async def test_a_kept_message_that_does_not_open_is_set_aside_not_lost(
    app, settings, registry, caplog
):
    """Kept messages sealed under a secret key since rotated, altered, or sealed for another key
    are set aside, still sealed, counted and logged (nothing of them in the log), while the
    rest are taken in; trying again with this key leaves them; the key they were sealed under
    takes in the rotated one."""
    redis, secret = app.state.runtime.redis, settings.secret_key
    await app.state.held.stop()  # the test moves them itself
    sealer = sealer_for(secret)
    text = f"COMPLAINT {ELIGIBLE} retailer took Rs 1000"
    entries = {}
    for kind in KINDS:
        plain = kept_message(f"SMspoilt{kind[:3]}", text)
        sealed = sealer.seal(plain, where=held.SPILL_KEY)
        entries[kind] = spoilt(kind, sealed, plain=plain, where=held.SPILL_KEY, secret=secret)
    good = sealer.seal(kept_message("SMsealed01"), where=held.SPILL_KEY)
    await redis.rpush(held.SPILL_KEY, *entries.values(), good)
    unopened = held_total("unopened", channel="unknown")
    with caplog.at_level(logging.INFO):
        # The one in clear (as the release before sealing kept it) and the sound one.
        assert await held.unspill(registry, redis) == 2
    assert await redis.llen(held.SPILL_KEY) == 0
    set_aside = [entries[kind] for kind in ("tampered", "rotated", "moved")]
    assert await redis.lrange(held.UNOPENED_KEY, 0, -1) == set_aside
    assert await redis.ttl(held.UNOPENED_KEY) == -1  # kept until taken in
    assert held_total("unopened", channel="unknown") == unopened + 3
    assert "3 messages kept in Redis" in caplog.text and "set aside" in caplog.text
    assert ELIGIBLE not in caplog.text and NOT_ELIGIBLE_PHONE[3:] not in caplog.text
    assert await held_count(registry) == 2
    # This secret key again: nothing opens, nothing is lost, the order is kept.
    assert await held.take_in_unopened(registry, redis, secret=secret) == 0
    assert await redis.lrange(held.UNOPENED_KEY, 0, -1) == set_aside
    assert "still do not open" in caplog.text
    # The key they were sealed under: the rotated one is taken in.
    assert await held.take_in_unopened(registry, redis, secret=ROTATED) == 1
    assert await redis.lrange(held.UNOPENED_KEY, 0, -1) == set_aside[::2]
    async with registry.sessions() as session:
        taken = await session.scalar(
            select(HeldMessage.text).where(HeldMessage.external_id == "SMspoiltrot")
        )
    assert taken == text
    assert held_total("unopened", channel="unknown") == unopened + 3  # counted once


async def test_the_secret_key_rotated_between_keeping_a_message_and_moving_it(
    client, app, settings, registry, monkeypatch
):
    """An SMS kept in Redis with the database away; the secret key changes and the workers
    restart: the message does not open, and is set aside rather than lost. A worker started
    with the earlier key takes it in at once, and it is answered by SMS."""
    redis = app.state.runtime.redis
    async with database_away_for_holds(app, settings):
        assert await Chat(client, NOT_ELIGIBLE_PHONE).send(ELIGIBLE) == ""  # held, no reply
    [entry] = await redis.lrange(held.SPILL_KEY, 0, -1)
    assert entry.startswith(PREFIX) and ELIGIBLE not in entry
    original = settings.secret_key
    async with restarted_with(monkeypatch, ROTATED):
        async with asyncio.timeout(10):  # its drainer's first pass
            while not await redis.llen(held.UNOPENED_KEY):
                await asyncio.sleep(0.02)
        assert await redis.llen(held.SPILL_KEY) == 0 and await held_count(registry) == 0
    async with restarted_with(monkeypatch, original):
        async with asyncio.timeout(10):  # taken in and answered by its drainer
            while True:
                async with registry.sessions() as session:
                    replies = list(
                        await session.scalars(
                            select(OutboundMessage.body).where(
                                OutboundMessage.dedup_key.like("held:sms:%")
                            )
                        )
                    )
                if replies:
                    break
                await asyncio.sleep(0.05)
    assert await redis.llen(held.UNOPENED_KEY) == 0
    [reply] = replies
    assert "35202-*******-1" in reply
