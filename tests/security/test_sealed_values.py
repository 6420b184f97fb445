"""Sealed values in Redis (api/sealed.py): a value that does not open is taken as expired.

What Redis keeps about a person is sealed under the secret key, for the key it is stored under.
Whatever does not open (sealed under a secret key since rotated, altered, moved from another
key, or written in clear by the release before sealing) is answered as if it had expired: the
same answer as for nothing stored, never a 500."""

from __future__ import annotations

import json

import httpx
import pytest

from api.sealed import PREFIX, Sealer, sealer_for
from bot.dialogue.ussd import UssdStore
from tests.api.test_sms_payments import HELPER_PHONE, Chat
from tests.conftest import ELIGIBLE, ELIGIBLE_PHONE, ELIGIBLE_WIFE
from tests.otp.test_rest_verification import code_for, login
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


async def test_a_rotated_secret_key_ends_sessions_and_tokens_without_errors(
    client, app, settings, registry, monkeypatch
):
    """The secret key changes and the API restarts: what the old key sealed is not read, and
    nobody gets an error; a USSD session is told to dial again, a token is refused (401)."""
    from api.main import create_app
    from api.settings import get_settings

    token = await login(client, app, settings, ELIGIBLE, ELIGIBLE_PHONE)
    phone = Dial(client, HELPER_PHONE)
    await phone.dial()
    await phone.send("1")
    await phone.send("2")
    monkeypatch.setenv("RABTA_SECRET_KEY", ROTATED)
    get_settings.cache_clear()
    restarted = create_app(get_settings())
    async with (
        restarted.router.lifespan_context(restarted),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=restarted), base_url="http://127.0.0.1:8000"
        ) as after,
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
