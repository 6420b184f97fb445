"""What a Redis dump would show: no phone number and no CNIC in clear, in any key or value.

Conversations, rate limits, OTP cooldowns and resumes, and the reply cache are keyed by keyed
hashes; a conversation's stored JSON leaves out the address and the proven phone, and a USSD
session's state holds a keyed hash of the phone that dialled, not the number. A conversation, a
USSD session (the path typed so far), an OTP request's CNIC and a bearer token's CNIC are sealed
(api/sealed.py); so are the console's call records, override requests and the words of its
forms kept for their agent, and the messages kept in Redis while the database is away."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator

from sqlalchemy import select

from api import held, surge
from api.db import Database
from api.registry.models import HeldMessage, Person
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


@contextlib.asynccontextmanager
async def database_away_for_holds(app, settings) -> AsyncIterator[None]:
    """Held messages meet a database that refuses connections (nothing listens where their
    writes go), every slot of the worker's gate taken: an SMS is held, and kept in Redis. The
    background answering is stopped first, so that what is kept stays there until moved."""
    runtime = app.state.runtime
    await app.state.held.stop()
    gone = Database.from_settings(
        settings.model_copy(update={"database_url": "postgresql+asyncpg://postgres@127.0.0.1:9/x"})
    )
    gate, holds_db = app.state.held.gate, runtime.holds.db
    runtime.holds.db, gate.in_flight = gone, gate.max_in_flight
    try:
        yield
    finally:
        runtime.holds.db, gate.in_flight = holds_db, 0
        gate._shedding_until = float("-inf")
        await gone.dispose()


#: What an agent and a sender write, each with words found nowhere else.
DESCRIPTION = "Campsite at Ichhra shut on collection day; retailer kept Rs 500 of Nasreen's money"
REASON = "Nasreen's SIM blocked by PTA since Tuesday; husband confirmed by video call"
NOTE = "Told the caller to visit the Shadman tehsil office with her sister's CNIC"
SPILLED = f"COMPLAINT my CNIC {ELIGIBLE} the Gulberg retailer took Rs 1000 from me"


async def test_the_console_and_held_messages_leave_nothing_in_clear(
    client,
    app,
    settings,
    registry,
    staff,  # noqa: F811
    new_client,  # noqa: F811
):
    """A call record (the CNIC searched), a verified caller's grant, an override request and its
    reason, a refused grievance's description kept for the next page, a note sent after its
    session ended kept for the next sign-in, and an SMS kept in Redis while the database is
    away (its sender's number and its text, a CNIC in it): no CNIC, no phone number and none of
    the words in Redis. Each still serves afterwards."""
    redis = app.state.runtime.redis
    amina = await new_client("amina")
    lookup = await verified(amina, registry)  # a call record, a code sent, a grant
    refused = {"category": "", "description": DESCRIPTION, "language": "ur"}
    assert (await post_form(amina, lookup, f"{lookup}/grievances", refused)).status_code == 303
    bilal = await new_client("bilal")
    other = await open_lookup(bilal, f"{ELIGIBLE[:5]}-{ELIGIBLE[5:12]}-{ELIGIBLE[12]}")
    asked = await post_form(bilal, other, f"{other}/override-request", {"reason": REASON})
    assert asked.status_code == 303
    ticket = await file(registry, settings, cnic=UNDER_REVIEW)
    page = f"/agent/grievances/{ticket}"
    sadia = await new_client("sadia")
    token = csrf_token((await sadia.get(page)).text)
    await idle_out(app, sadia)
    late = await sadia.post(f"{page}/notes", data={"note": NOTE, "csrf_token": token})
    assert late.status_code == 303
    async with database_away_for_holds(app, settings):
        sms = Chat(client, NOT_ELIGIBLE_PHONE)
        assert await sms.send(SPILLED) == ""  # held: no reply yet

    dump = await everything_in(redis)
    assert sum(k.startswith("rabta:agent:sealed:lookup:") for k in dump) == 2
    assert any(k.startswith("rabta:agent:sealed:grant:") for k in dump)
    assert any(k.startswith("rabta:agent:sealed:override:") for k in dump)
    assert any(k.startswith("rabta:agent:session:") and k.endswith(":flash") for k in dump)
    assert any(k.startswith("rabta:agent:session:") and k.endswith(":unsent") for k in dump)
    assert await redis.llen(held.SPILL_KEY) == 1
    async with registry.sessions() as session:
        cnics = set(await session.scalars(select(Person.cnic)))
    for cnic in sorted(cnics):
        spelled = (cnic, f"{cnic[:5]}-{cnic[5:12]}-{cnic[12]}")
        leaks = [text for text in dump if any(form in text for form in spelled)]
        assert leaks == [], f"{cnic} in Redis: {leaks[:3]}"
    assert [text for text in dump if CNIC_IN_CLEAR.search(text)] == []
    for phone in (ELIGIBLE_PHONE, NOT_ELIGIBLE_PHONE):
        national = phone.removeprefix("+92")
        leaks = [text for text in dump if national in text]
        assert leaks == [], f"{phone} in Redis: {leaks[:3]}"
    for words in ("Ichhra", "Nasreen", "Shadman", "Gulberg", "COMPLAINT"):
        assert [text for text in dump if words in text] == [], words

    # Sealed, not lost: each comes back where it belongs.
    assert textarea((await amina.get(lookup)).text, "description") == DESCRIPTION
    assert "Nasreen Bibi" in (await amina.get(lookup)).text  # still verified
    queue = (await (await new_client("zara")).get("/agent/overrides")).text
    assert REASON in queue.replace("&#39;", "'") and "35202-*******-1" in queue
    await sign_in_again(sadia, late, "sadia")
    assert textarea((await sadia.get(page)).text, "caller-note") == NOTE
    assert await held.unspill(registry, redis) == 1
    async with registry.sessions() as session:
        [kept] = list(await session.scalars(select(HeldMessage)))
    assert (kept.sender, kept.text) == (NOT_ELIGIBLE_PHONE, SPILLED)
