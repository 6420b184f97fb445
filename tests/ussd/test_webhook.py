"""`POST /webhooks/ussd`: the real payload shape, bad input, replays, expiry and the text path."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import func, select
from sqlalchemy import text as sql

from api.registry.models import Contact, Grievance, Household, InboundMessage, OutboundMessage
from api.sealed import sealer_for
from api.webhooks.ussd import error_screen
from bot.channels.ussd import fits
from bot.dialogue.ussd import SEEN_SECONDS, SESSION_SECONDS, Plan, UssdState, UssdStore, plan
from tests.conftest import (
    ELIGIBLE_PHONE,
    ELIGIBLE_WIFE,
    NOT_ELIGIBLE,
    NOT_ELIGIBLE_PHONE,
    NOT_FOUND,
    UNDER_REVIEW,
    load_payload,
)
from tests.faults.services import free_port
from tests.ussd.conftest import URL, screen_of, ussd_form


async def stored_state(app, session: str) -> dict:
    """A session's state as the store keeps it, opened (it is sealed in Redis)."""
    runtime = app.state.runtime
    key = UssdStore.key(session)
    plain = sealer_for(runtime.settings.secret_key).unseal(await runtime.redis.get(key), where=key)
    assert plain is not None
    return json.loads(plain)


async def store_state(app, session: str, state: dict) -> None:
    """Replace a session's state, sealed as the store does."""
    runtime = app.state.runtime
    key = UssdStore.key(session)
    sealed = sealer_for(runtime.settings.secret_key).seal(json.dumps(state), where=key)
    await runtime.redis.set(key, sealed)


HELPER_PHONE = "+923219876543"
# errors/try_later in the default language's USSD form (Roman Urdu)
TRY_LATER = (
    "Maazrat, service is waqt masroof hai. Meharbani karke kuch minute baad dobara koshish karein."
)


async def remember_english(client, phone: str) -> None:
    """A first session that chooses English, so later ones open on the main menu."""
    first = screen_of(await client.post(URL, data=ussd_form("ATUid_lang", phone, "")))
    assert first.startswith("CON ") and "1 English" in first
    menu = screen_of(await client.post(URL, data=ussd_form("ATUid_lang", phone, "1")))
    assert "1 Check eligibility" in menu


async def test_the_real_payload_session(client, registry):
    """The three posts of tests/payloads/africastalking_ussd.json, as the gateway sends them."""
    payload = load_payload("africastalking_ussd.json")
    await remember_english(client, payload["requests"][0]["phoneNumber"])
    screens = [screen_of(await client.post(URL, data=form)) for form in payload["requests"]]
    assert screens[0].startswith("CON ") and "1 Check eligibility" in screens[0]
    assert screens[1] == "CON Enter the 13-digit CNIC number:\n0 Back"
    # The phone is the CNIC's registered mobile: her programmes, and her payment one key away.
    assert screens[2] == (
        "CON CNIC 35202-*******-2 is eligible: Kafaalat, Taleemi Wazaif.\n"
        "1 My payment\n0 Back 00 Menu"
    )


# (inputs typed after choosing 1 "Check eligibility", what the last screen says)
ELIGIBLE_WIFE_SCREEN = "END CNIC 35202-*******-2 is eligible"
ELIGIBILITY_CASES = [
    pytest.param([ELIGIBLE_WIFE], ELIGIBLE_WIFE_SCREEN, id="eligible"),
    pytest.param(["35202-1234567-2"], ELIGIBLE_WIFE_SCREEN, id="dashes"),
    pytest.param(["35202*1234567*2"], ELIGIBLE_WIFE_SCREEN, id="stars-inside-the-input"),
    pytest.param(["۳۵۲۰۲۱۲۳۴۵۶۷۲"], ELIGIBLE_WIFE_SCREEN, id="urdu-digits"),
    pytest.param(["\u200f3520212345672"], ELIGIBLE_WIFE_SCREEN, id="bidi-mark"),
    pytest.param([NOT_ELIGIBLE], "END CNIC 42101-*******-3 is not eligible", id="not-eligible"),
    pytest.param(
        [UNDER_REVIEW],
        "END CNIC 17301-*******-2: your household is under review",
        id="under-review",
    ),
    pytest.param([NOT_FOUND], "END CNIC 61101-*******-7 is not in the", id="not-found"),
    pytest.param(["352021234567"], "CON That is not a CNIC", id="twelve-digits"),
    pytest.param(["hello"], "CON That is not a CNIC", id="letters"),
    pytest.param(["😀🙏"], "CON That is not a CNIC", id="emoji"),
    pytest.param([""], "CON That is not a CNIC", id="empty-step"),
    pytest.param(["", ELIGIBLE_WIFE], ELIGIBLE_WIFE_SCREEN, id="empty-step-then-cnic"),
    pytest.param(["x" * 500], "CON That is not a CNIC", id="very-long-input"),
    pytest.param(["0"], "CON BISP menu:", id="back"),
    pytest.param(["00"], "CON BISP menu:", id="home"),
]


@pytest.mark.parametrize(("inputs", "expected"), ELIGIBILITY_CASES)
async def test_eligibility_inputs(client, registry, inputs, expected):
    await remember_english(client, NOT_ELIGIBLE_PHONE)
    session, text = "ATUid_case", ""
    screen_of(await client.post(URL, data=ussd_form(session, NOT_ELIGIBLE_PHONE, text)))
    for typed in ["1", *inputs]:
        text = typed if text == "" and typed == "1" else f"{text}*{typed}"
        last = screen_of(await client.post(URL, data=ussd_form(session, NOT_ELIGIBLE_PHONE, text)))
    assert last.startswith(expected), last


@pytest.mark.parametrize(
    ("form", "status"),
    [
        pytest.param({"phoneNumber": ELIGIBLE_PHONE, "text": ""}, 400, id="no-session"),
        pytest.param({"sessionId": "ATUid_x", "text": ""}, 400, id="no-phone"),
        pytest.param({"sessionId": "ATUid_x", "phoneNumber": "hello"}, 400, id="junk-phone"),
        pytest.param({"sessionId": "ATUid_x", "phoneNumber": "+92"}, 400, id="short-phone"),
        pytest.param({"sessionId": "ATUid_x", "phoneNumber": "😀"}, 400, id="emoji-phone"),
        pytest.param(
            {"sessionId": "x" * 65, "phoneNumber": ELIGIBLE_PHONE}, 400, id="long-session"
        ),
        pytest.param(
            {"sessionId": "sessión", "phoneNumber": ELIGIBLE_PHONE}, 400, id="non-ascii-session"
        ),
        pytest.param(
            {"sessionId": "ATUid\x01x", "phoneNumber": ELIGIBLE_PHONE}, 400, id="control-session"
        ),
        pytest.param(
            {"sessionId": "ATUid_x", "phoneNumber": ELIGIBLE_PHONE, "text": "1" * 1001},
            400,
            id="long-text",
        ),
    ],
)
async def test_requests_that_are_not_ussd_hits_are_clean_4xx(client, registry, form, status):
    response = await client.post(URL, data=form)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_the_longest_text_is_still_a_ussd_hit(client, registry):
    """1,000 characters of `text` (a long session's path) are read, not refused as too long."""
    await remember_english(client, ELIGIBLE_PHONE)
    text = "1*" + "2" * 998
    answer = screen_of(
        await client.post(URL, data=ussd_form("ATUid_longest", ELIGIBLE_PHONE, text))
    )
    assert answer.startswith("CON That is not a CNIC.")  # Check eligibility, then 998 digits


async def test_a_one_megabyte_body_is_refused_before_the_route(client):
    form = ussd_form("ATUid_big", ELIGIBLE_PHONE, "1" * 1_000_000)
    response = await client.post(URL, data=form)
    assert response.status_code == 413


async def test_json_is_not_a_gateway_form(client):
    response = await client.post(URL, json=ussd_form("ATUid_json", ELIGIBLE_PHONE, ""))
    assert response.status_code == 415


async def test_multipart_and_missing_text_work(client, registry):
    form = {"sessionId": "ATUid_mp", "phoneNumber": "03001234567", "serviceCode": "*262#"}
    response = await client.post(URL, files={k: (None, v) for k, v in form.items()})
    assert screen_of(response).startswith("CON ") and "1 English" in response.text


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
async def test_a_form_with_too_many_fields_is_a_400(client, registry, encoding):
    """A gateway posts five fields; two hundred more are not a USSD hit, in either encoding."""
    form = ussd_form("ATUid_many", ELIGIBLE_PHONE, "")
    form.update({f"extra{n}": "x" for n in range(200)})
    if encoding == "urlencoded":
        response = await client.post(URL, data=form)
    else:
        response = await client.post(URL, files={k: (None, v) for k, v in form.items()})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_form_written_in_raw_utf8_reads_as_utf8(client, registry):
    """Urdu digits sent as raw UTF-8 bytes, not percent-escaped, are the same input."""
    from urllib.parse import urlencode

    await remember_english(client, ELIGIBLE_PHONE)
    screen_of(await client.post(URL, data=ussd_form("ATUid_raw", ELIGIBLE_PHONE, "")))
    screen_of(await client.post(URL, data=ussd_form("ATUid_raw", ELIGIBLE_PHONE, "1")))
    form = ussd_form("ATUid_raw", ELIGIBLE_PHONE, "")
    del form["text"]
    body = urlencode(form).encode() + "&text=1*۳۵۲۰۲۱۲۳۴۵۶۷۲".encode()
    response = await client.post(
        URL, content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert screen_of(response).startswith("CON CNIC 35202-*******-2 is eligible: Kafaalat")


async def test_emoji_on_a_menu_shows_the_menu_again(client, registry):
    await remember_english(client, ELIGIBLE_PHONE)
    screen_of(await client.post(URL, data=ussd_form("ATUid_e", ELIGIBLE_PHONE, "")))
    again = screen_of(await client.post(URL, data=ussd_form("ATUid_e", ELIGIBLE_PHONE, "😀")))
    assert again.startswith("CON Wrong number. Choose again:\n1 Check eligibility")


async def test_a_dial_string_with_steps_runs_them_all(client, registry):
    """`*262*1*<CNIC>#` arrives as a first hit with text `1*<CNIC>`; `1**2`-style empty steps
    are steps that chose nothing."""
    await remember_english(client, NOT_ELIGIBLE_PHONE)
    answer = screen_of(
        await client.post(URL, data=ussd_form("ATUid_d", NOT_ELIGIBLE_PHONE, f"1**{ELIGIBLE_WIFE}"))
    )
    assert answer.startswith("END CNIC 35202-*******-2 is eligible")


async def test_replays_answer_the_same_and_act_once(client, app, registry, db):
    await remember_english(client, ELIGIBLE_PHONE)
    session = "ATUid_replay"
    steps = ["", "3", "3*2", "3*2*2", "3*2*2*1"]
    screens = [
        screen_of(await client.post(URL, data=ussd_form(session, ELIGIBLE_PHONE, t))) for t in steps
    ]
    assert screens[-1].startswith("END Complaint G-")
    # The gateway retries the last hit, and an earlier one, after the session moved on.
    assert (
        screen_of(await client.post(URL, data=ussd_form(session, ELIGIBLE_PHONE, "3*2*2*1")))
        == screens[-1]
    )
    assert (
        screen_of(await client.post(URL, data=ussd_form(session, ELIGIBLE_PHONE, "3*2")))
        == screens[2]
    )
    async with db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Grievance)) == 1
        sms = await s.scalar(
            select(func.count())
            .select_from(OutboundMessage)
            .where(OutboundMessage.kind == "grievance_filed")
        )
        assert sms == 1
        ids = (
            await s.scalars(
                select(InboundMessage.external_id).where(InboundMessage.channel == "ussd")
            )
        ).all()
    assert all(len(i) <= 64 and ":" in i for i in ids)


async def test_a_replayed_code_request_sends_one_code(client, registry, db):
    await remember_english(client, HELPER_PHONE)
    session = "ATUid_code"
    for text in ("", "2", f"2*{ELIGIBLE_WIFE}", f"2*{ELIGIBLE_WIFE}"):
        last = screen_of(await client.post(URL, data=ussd_form(session, HELPER_PHONE, text)))
    assert "We sent a 6-digit code by SMS to +92300****567" in last
    async with db.sessions() as s:
        codes = await s.scalar(
            select(func.count()).select_from(OutboundMessage).where(OutboundMessage.kind == "otp")
        )
    assert codes == 1


async def test_state_lives_for_the_session_and_expiry_says_dial_again(client, app, registry):
    await remember_english(client, ELIGIBLE_PHONE)
    session = "ATUid_timeout"
    screen_of(await client.post(URL, data=ussd_form(session, ELIGIBLE_PHONE, "")))
    screen_of(await client.post(URL, data=ussd_form(session, ELIGIBLE_PHONE, "1")))
    redis = app.state.runtime.redis
    ttl = await redis.ttl(UssdStore.key(session))
    assert 0 < ttl <= SESSION_SECONDS
    # The seen-mark, set at the first hit only, outlives the state by far; evicted, the next
    # hit sets it again.
    assert SESSION_SECONDS < await redis.ttl(UssdStore.seen_key(session)) <= SEEN_SECONDS
    await redis.delete(UssdStore.seen_key(session))
    screen_of(await client.post(URL, data=ussd_form(session, ELIGIBLE_PHONE, "1*0")))
    assert SESSION_SECONDS < await redis.ttl(UssdStore.seen_key(session)) <= SEEN_SECONDS
    await redis.delete(UssdStore.key(session))  # what three idle minutes do
    late = screen_of(
        await client.post(URL, data=ussd_form(session, ELIGIBLE_PHONE, f"1*{ELIGIBLE_WIFE}"))
    )
    assert late == "END This session has ended. Please dial again."


async def test_a_state_from_another_release_reads_or_ends_the_session(client, app, registry):
    """A rolling deploy: a field this release does not know is left out and the session goes
    on; a screen it does not have ends the session as an expired one does, not as an error."""
    await remember_english(client, ELIGIBLE_PHONE)
    session = "ATUid_release"
    screen_of(await client.post(URL, data=ussd_form(session, ELIGIBLE_PHONE, "")))
    stored = await stored_state(app, session)
    await store_state(app, session, {**stored, "from_a_newer_release": 1})
    menu = screen_of(await client.post(URL, data=ussd_form(session, ELIGIBLE_PHONE, "1")))
    assert menu == "CON Enter the 13-digit CNIC number:\n0 Back"

    stored = await stored_state(app, session)
    await store_state(app, session, {**stored, "screen": "renamed"})
    late = screen_of(
        await client.post(URL, data=ussd_form(session, ELIGIBLE_PHONE, f"1*{ELIGIBLE_WIFE}"))
    )
    assert late == "END This session has ended. Please dial again."


async def test_a_session_id_from_another_phone_is_not_continued(client, registry):
    await remember_english(client, ELIGIBLE_PHONE)
    session = "ATUid_hijack"
    screen_of(await client.post(URL, data=ussd_form(session, ELIGIBLE_PHONE, "")))
    screen_of(await client.post(URL, data=ussd_form(session, ELIGIBLE_PHONE, "2")))
    other = screen_of(await client.post(URL, data=ussd_form(session, HELPER_PHONE, "2*2")))
    # "This session has ended. Please dial again." in the language of a phone never heard from
    assert other == "END Yeh session khatam ho gaya. Dobara dial karein."
    # The phone that dialled goes on as if nothing happened.
    mine = screen_of(await client.post(URL, data=ussd_form(session, ELIGIBLE_PHONE, "2*2")))
    assert mine.startswith("END 35202-***4567-2 Kafaalat 2026-Q4: Rs 13,500")


async def test_the_language_choice_is_remembered_on_the_contact(client, registry, db):
    first = screen_of(await client.post(URL, data=ussd_form("ATUid_l1", HELPER_PHONE, "")))
    assert first.startswith("CON ") and "2 اردو" in first
    screen_of(await client.post(URL, data=ussd_form("ATUid_l1", HELPER_PHONE, "2")))
    async with db.sessions() as s:
        contact = await s.scalar(
            select(Contact).where(Contact.channel == "ussd", Contact.address == HELPER_PHONE)
        )
    assert contact.language == "ur"
    again = screen_of(await client.post(URL, data=ussd_form("ATUid_l2", HELPER_PHONE, "")))
    assert "1 " in again and "اردو" not in again  # straight to the main menu, in Roman Urdu


async def test_the_sms_language_counts_on_ussd(client, registry, db):
    async with db.transaction() as s:
        s.add(Contact(channel="sms", address=HELPER_PHONE, phone=HELPER_PHONE, language="en"))
    first = screen_of(await client.post(URL, data=ussd_form("ATUid_sms", HELPER_PHONE, "")))
    assert first.startswith("CON BISP menu:")


@pytest.mark.parametrize(
    ("state_text", "seen", "text", "expected"),
    [
        (None, False, "", Plan(text="", fresh=True)),
        (None, False, "1*2", Plan(text="1*2", fresh=True, inputs=("1", "2"))),
        (None, False, "1**2", Plan(text="1**2", fresh=True, inputs=("1", "", "2"))),
        (None, True, "1*2", Plan(text="1*2", expired=True)),
        (None, True, "", Plan(text="", fresh=True)),
        ("", True, "1", Plan(text="1", inputs=("1",))),
        ("", True, "3520*2123*4567*2", Plan(text="3520*2123*4567*2", inputs=("3520*2123*4567*2",))),
        ("1", True, "1*", Plan(text="1*", inputs=("",))),
        ("1*", True, "1**2", Plan(text="1**2", inputs=("2",))),
        (
            "1",
            True,
            "1*35202*1234567*2",
            Plan(text="1*35202*1234567*2", inputs=("35202*1234567*2",)),
        ),
        ("1*2", True, "1*2", Plan(text="1*2")),
        ("1*2", True, "5*6", Plan(text="5*6", inputs=("6",))),
        ("1*2", True, "", Plan(text="", fresh=True)),
    ],
)
def test_plan_reads_the_new_input_after_the_last_text(state_text, seen, text, expected):
    state = None
    if state_text is not None:
        state = UssdState(
            session_id="s", phone="+923001234567", default_language="en", last_text=state_text
        )
    assert plan(state, seen=seen, text=text) == expected


def test_an_ended_session_stays_ended():
    state = UssdState(
        session_id="s", phone="+923001234567", default_language="en", last_text="1", ended=True
    )
    assert plan(state, seen=True, text="1*2").expired


def test_screens_are_at_most_182_characters():
    """SPEC §6: at most 182 characters (GSM-7); a screen in Arabic script is UCS-2 and gets 80."""
    assert fits("END " + "a" * 178) and not fits("END " + "a" * 179)
    assert fits("END " + "ب" * 76) and not fits("END " + "ب" * 77)


async def test_redis_down_ends_the_session_politely(client, app, registry, db):
    """Without Redis a session's state cannot be read: the hit gets the "try again later" END
    screen (not a 500), nothing is recorded, and the same hit once Redis is back is answered."""
    pool = app.state.runtime.redis.connection_pool
    port = pool.connection_kwargs["port"]
    pool.connection_kwargs["port"] = free_port()  # nobody listens there
    await pool.disconnect()
    pool.reset()  # connections keep their port: new ones are made for the new one
    try:
        body = screen_of(await client.post(URL, data=ussd_form("ATUid_down", HELPER_PHONE, "")))
    finally:
        pool.connection_kwargs["port"] = port
        await pool.disconnect()
        pool.reset()
    assert body == f"END {TRY_LATER}"
    assert body == error_screen(app.state.runtime)
    async with db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(InboundMessage)) == 0
    again = screen_of(await client.post(URL, data=ussd_form("ATUid_down", HELPER_PHONE, "")))
    assert again.startswith("CON ") and "1 English" in again


async def test_a_failure_while_answering_is_an_end_screen_not_a_500(
    client, app, registry, monkeypatch
):
    from bot.dialogue import ussd as menus

    async def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(menus, "handle", broken)  # a bug cannot be had otherwise
    body = screen_of(await client.post(URL, data=ussd_form("ATUid_bug", ELIGIBLE_PHONE, "")))
    assert body == f"END {TRY_LATER}"


async def test_a_hit_the_database_stalls_ends_politely_in_time(
    client, app, registry, answer_within_300_ms
):
    """A database that stalls rather than refusing (a partition, a lock held too long): the
    gateway gives up at 15 s and shows a network error; the hit gets the "try again later" END
    screen once RABTA_SURGE_ANSWER_WITHIN_MS has passed, and the next session goes on as usual."""
    if registry.engine.dialect.name != "postgresql":
        pytest.skip("the stall is a PostgreSQL table lock")
    async with registry.engine.begin() as locker:
        await locker.execute(sql("LOCK TABLE contacts IN ACCESS EXCLUSIVE MODE"))
        async with asyncio.timeout(5):  # the stall itself is unbounded
            body = screen_of(
                await client.post(URL, data=ussd_form("ATUid_stall", HELPER_PHONE, ""))
            )
    assert body == error_screen(app.state.runtime)  # END "…busy. Please try again in a few…"
    body = screen_of(await client.post(URL, data=ussd_form("ATUid_after", HELPER_PHONE, "")))
    assert body.startswith("CON ")


async def test_a_look_up_hit_is_recorded_with_its_screen_and_a_replay_gets_it(client, registry, db):
    """Menu steps and eligibility look-ups take the look-up lane: answered first, then recorded
    with their screen; a replay meets the row, even after the registry changed."""
    await remember_english(client, HELPER_PHONE)
    session, cnic_step = "ATUid_lane", f"1*{NOT_ELIGIBLE}"
    for text in ("", "1"):
        screen_of(await client.post(URL, data=ussd_form(session, HELPER_PHONE, text)))
    first = screen_of(await client.post(URL, data=ussd_form(session, HELPER_PHONE, cnic_step)))
    assert first.startswith("END ") and "not eligible" in first
    async with db.transaction() as s:
        row = await s.scalar(
            select(InboundMessage)
            .where(InboundMessage.channel == "ussd")
            .order_by(InboundMessage.id.desc())
            .limit(1)
        )
        assert row.reply == first and row.language == "en" and row.contact_id is not None
        assert row.intent == "eligibility_cnic"
        await s.execute(Household.__table__.update().values(pmt_score=1.0))
    again = screen_of(await client.post(URL, data=ussd_form(session, HELPER_PHONE, cnic_step)))
    assert again == first
    async with db.sessions() as s:
        rows = await s.scalar(
            select(func.count())
            .select_from(InboundMessage)
            .where(InboundMessage.channel == "ussd", InboundMessage.reply == first)
        )
    assert rows == 1


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        pytest.param(NOT_ELIGIBLE, "42101-*******-3 is not eligible", id="not-eligible"),
        pytest.param(UNDER_REVIEW, "under review", id="under-review"),
        pytest.param(NOT_FOUND, "61101-*******-7 is not in the", id="not-found"),
        pytest.param("12345", "CON That is not a CNIC", id="not-a-cnic"),
    ],
)
async def test_a_cnic_typed_on_the_eligibility_screen_is_read_with_the_contact(
    client, registry, eligibility_reads, typed, expected
):
    """As by SMS, the household is read with the contact's upsert; the menu does not read the
    registry again (a hit that is not a CNIC reads nothing)."""
    await remember_english(client, HELPER_PHONE)
    session = "ATUid_ahead"
    for text in ("", "1"):
        screen_of(await client.post(URL, data=ussd_form(session, HELPER_PHONE, text)))
    last = screen_of(await client.post(URL, data=ussd_form(session, HELPER_PHONE, f"1*{typed}")))
    assert expected in last, last
    assert eligibility_reads == []


async def test_a_hit_wrongly_taken_for_a_look_up_is_answered_claimed(
    client, registry, db, monkeypatch, caplog
):
    """Should the read-only screens ever include one that writes, the lane's services refuse
    the write before it happens and the hit is answered in a transaction instead: one code."""
    from api.webhooks import ussd

    monkeypatch.setattr(
        ussd, "READ_ONLY_SCREENS", ussd.READ_ONLY_SCREENS | {ussd.menus.Screen.VERIFY_CNIC}
    )
    await remember_english(client, HELPER_PHONE)
    session = "ATUid_wrong_lane"
    for text in ("", "2"):
        screen_of(await client.post(URL, data=ussd_form(session, HELPER_PHONE, text)))
    sent = screen_of(
        await client.post(URL, data=ussd_form(session, HELPER_PHONE, f"2*{ELIGIBLE_WIFE}"))
    )
    assert "We sent a 6-digit code by SMS to +92300****567" in sent
    assert "tried to write (send_code)" in caplog.text
    async with db.sessions() as s:
        codes = await s.scalar(
            select(func.count()).select_from(OutboundMessage).where(OutboundMessage.kind == "otp")
        )
    assert codes == 1


async def test_a_session_finds_its_contact_once(client, app, registry, db, monkeypatch):
    """The first hit upserts the contact and keeps its id in the session's state; later hits
    take the contact from there (no upsert), and still save what they change on it: a language
    chosen, then a CNIC looked up with its household read alone. A state written before
    sessions kept their contact finds it again, once."""
    from api.conversations import repository

    upserts: list[str] = []
    for name in ("get_or_create_contact", "get_or_create_contact_reading_household"):
        original = getattr(repository, name)

        async def counted(*args, _original=original, _name=name, **kwargs):
            upserts.append(_name)
            return await _original(*args, **kwargs)

        monkeypatch.setattr(repository, name, counted)
    session = "ATUid_once"
    screens = [
        screen_of(await client.post(URL, data=ussd_form(session, HELPER_PHONE, text)))
        for text in ("", "1", "1*1", f"1*1*{NOT_ELIGIBLE}")
    ]
    assert "1 English" in screens[0] and "1 Check eligibility" in screens[1]
    assert screens[3].startswith("END ") and "42101-*******-3 is not eligible" in screens[3]
    assert upserts == ["get_or_create_contact"]
    async with db.sessions() as s:
        contact = await s.scalar(
            select(Contact).where(Contact.channel == "ussd", Contact.address == HELPER_PHONE)
        )
        recorded = await s.scalars(
            select(InboundMessage.contact_id).where(InboundMessage.channel == "ussd")
        )
        assert set(recorded) == {contact.id}
    assert contact.language == "en"
    stored = await stored_state(app, session)
    assert stored["contact_id"] == contact.id

    older = "ATUid_older"
    screen_of(await client.post(URL, data=ussd_form(older, HELPER_PHONE, "")))
    stored = await stored_state(app, older)
    del stored["contact_id"]
    await store_state(app, older, stored)
    upserts.clear()
    for text in ("1", "1*1"):
        screen_of(await client.post(URL, data=ussd_form(older, HELPER_PHONE, text)))
    assert upserts == ["get_or_create_contact"]
    assert (await stored_state(app, older))["contact_id"] == contact.id
