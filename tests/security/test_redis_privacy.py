"""What a Redis dump would show: no phone number in clear, in any key or value.

Conversations, rate limits, OTP cooldowns and resumes, and the reply cache are keyed by keyed
hashes; a conversation's stored JSON leaves out the address and the proven phone, and a USSD
session's state holds a keyed hash of the phone that dialled, not the number."""

from __future__ import annotations

from api import surge
from tests.api.test_sms_payments import HELPER_PHONE, Chat
from tests.conftest import ELIGIBLE, ELIGIBLE_PHONE, ELIGIBLE_WIFE, NOT_ELIGIBLE
from tests.ussd.conftest import URL as USSD_URL
from tests.ussd.conftest import screen_of, ussd_form


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
