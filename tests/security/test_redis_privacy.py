"""What a Redis dump would show: no phone number and no CNIC in clear, in any key or value.

Conversations, rate limits, OTP cooldowns and resumes, and the reply cache are keyed by keyed
hashes; a conversation's stored JSON leaves out the address and the proven phone, and a USSD
session's state holds a keyed hash of the phone that dialled, not the number. A conversation, a
USSD session (the path typed so far), an OTP request's CNIC and a bearer token's CNIC are sealed
(api/sealed.py)."""

from __future__ import annotations

import re

from sqlalchemy import select

from api import surge
from api.registry.models import Person
from tests.api.test_sms_payments import HELPER_PHONE, Chat, delivered_code
from tests.conftest import (
    ELIGIBLE,
    ELIGIBLE_PHONE,
    ELIGIBLE_WIFE,
    NOT_ELIGIBLE,
    NOT_ELIGIBLE_PHONE,
    NOT_FOUND,
    UNDER_REVIEW,
)
from tests.otp.test_rest_verification import login
from tests.ussd.conftest import URL as USSD_URL
from tests.ussd.conftest import Dial, screen_of, ussd_form

#: A CNIC in clear: 13 digits, with or without its dashes, standing alone. A keyed hash's hex
#: holds runs of decimal digits by chance; such a run is bounded by hex, and is not one.
CNIC_IN_CLEAR = re.compile(r"(?<![0-9a-fA-F])[0-9]{5}-?[0-9]{7}-?[0-9](?![0-9a-fA-F])")


async def everything_in(redis) -> list[str]:
    """Every key and every value in the keyspace, as text."""
    out: list[str] = []
    async for key in redis.scan_iter():
        out.append(key.decode() if isinstance(key, bytes) else key)
        kind = await redis.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind == "string":
            values = [await redis.get(key)]
        elif kind == "list":
            values = await redis.lrange(key, 0, -1)
        elif kind == "hash":
            values = [v for pair in (await redis.hgetall(key)).items() for v in pair]
        elif kind == "set":
            values = list(await redis.smembers(key))
        elif kind == "zset":
            values = await redis.zrange(key, 0, -1)
        else:
            values = []
        out += [v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in values]
    return out


async def test_redis_holds_no_phone_number_in_clear(client, app, registry):
    person, helper = Chat(client, ELIGIBLE_PHONE), Chat(client, HELPER_PHONE)
    whatsapp = Chat(client, ELIGIBLE_PHONE, channel="whatsapp")
    await person.send("LANG EN")
    await person.send(ELIGIBLE)  # a look-up: limits, the reply cache
    await person.send(ELIGIBLE)  # its resend, from the cache
    await person.send("COMPLAINT")  # a conversation left mid-flow
    await helper.send(NOT_ELIGIBLE)
    await helper.send(f"PAY {ELIGIBLE_WIFE}")  # a code to the registered mobile: OTP state
    await whatsapp.send("HELP")
    for path in ("", "1"):  # a USSD session left open on its main menu, then on a choice
        screen_of(await client.post(USSD_URL, data=ussd_form("ATUid_priv", HELPER_PHONE, path)))
    await app.state.runtime.cache_writes.flush()  # entries still waiting for a look-up
    dump = await everything_in(app.state.runtime.redis)
    assert any(k.startswith("rabta:conv:sms:") for k in dump)  # the state is there, hashed
    assert any(k.startswith(surge.KEY_PREFIX) for k in dump)  # so is the reply cache
    assert "rabta:ussd:state:ATUid_priv" in dump
    for phone in (ELIGIBLE_PHONE, HELPER_PHONE):
        national = phone.removeprefix("+92")
        leaks = [text for text in dump if national in text]
        assert leaks == [], f"{phone} in Redis: {leaks[:3]}"


async def test_redis_holds_no_cnic_in_clear(client, app, settings, registry, db):
    """OTP requests (one for a CNIC nobody holds: a decoy), a bearer token, a conversation
    verified by a code, a complaint left waiting for its code, a USSD session left open on the
    code screen and one ended on an eligibility answer: no CNIC anywhere in Redis."""
    redis = app.state.runtime.redis
    token = await login(client, app, settings, ELIGIBLE, ELIGIBLE_PHONE)  # a request, a token
    assert (await client.post("/v1/otp", json={"cnic": NOT_FOUND})).status_code == 202  # decoy
    helper = Chat(client, HELPER_PHONE)
    await helper.send("LANG EN")
    await helper.send(f"PAY {ELIGIBLE_WIFE}")
    verified = await helper.send(await delivered_code(app, settings, ELIGIBLE_PHONE))
    assert "Rs 13,500" in verified  # a conversation verified for her CNIC
    stranger = Chat(client, "+923331112222")
    await stranger.send("LANG EN")
    await stranger.send("COMPLAINT")
    asked = await stranger.send(UNDER_REVIEW)  # left mid-flow, its code pending
    assert "we sent a 6-digit code" in asked
    await Chat(client, NOT_ELIGIBLE_PHONE).send(ELIGIBLE)  # a look-up: the reply cache
    open_session = Dial(client, "+923335556666")
    await open_session.dial()
    await open_session.send("1")  # English
    await open_session.send("2")  # my payment: nobody is known for this phone
    assert "Enter it within" in await open_session.send(NOT_ELIGIBLE)  # left open
    ended = Dial(client, "+923337778888")
    for typed in ("", "1", "1", ELIGIBLE_WIFE.replace("35202", "35202-")):
        screen = await (ended.dial() if typed == "" else ended.send(typed))
    assert screen.startswith("END ") and ended.ended  # over, its state kept until it expires
    await app.state.runtime.cache_writes.flush()

    dump = await everything_in(redis)
    assert any(k.startswith("rabta:otp:req:") for k in dump)  # each kind of state is there
    assert any(k.startswith("rabta:token:") for k in dump)
    assert sum(k.startswith("rabta:conv:sms:") for k in dump) == 2
    assert f"rabta:ussd:state:{open_session.session_id}" in dump
    assert f"rabta:ussd:state:{ended.session_id}" in dump
    async with db.sessions() as session:
        cnics = set(await session.scalars(select(Person.cnic))) | {NOT_FOUND}
    for cnic in sorted(cnics):
        spelled = (cnic, f"{cnic[:5]}-{cnic[5:12]}-{cnic[12]}")
        leaks = [text for text in dump if any(form in text for form in spelled)]
        assert leaks == [], f"{cnic} in Redis: {leaks[:3]}"
    assert [text for text in dump if CNIC_IN_CLEAR.search(text)] == []
    # Sealed, not lost: what was kept still serves.
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["cnic_masked"] == "35202-*******-1"
    assert "Rs 13,500" in await helper.send(f"PAY {ELIGIBLE_WIFE}")  # still verified
