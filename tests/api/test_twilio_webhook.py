"""The Twilio messaging webhook: real payload shapes, signatures, replays and bad input."""

from __future__ import annotations

import asyncio

import hypothesis
import pytest
from hypothesis import strategies as st
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from api.bot_services import LookupServices, NotALookup
from api.grievances.schemas import Category
from api.identity import Cnic
from api.registry.models import Contact, InboundMessage
from api.settings import get_settings
from api.webhooks.twilio import twiml
from tests.conftest import (
    ELIGIBLE,
    ELIGIBLE_PHONE,
    ELIGIBLE_WIFE,
    NOT_ELIGIBLE,
    NOT_FOUND,
    UNDER_REVIEW,
    load_payload,
    twiml_messages,
)
from tests.conftest import sms_form as sms

URL = "/webhooks/twilio/messaging"
PUBLIC = "http://127.0.0.1:8000"


def reply_text(response) -> str:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    return "\n".join(twiml_messages(response.text))


def whatsapp(body: str, sid: str, sender: str = ELIGIBLE_PHONE, **fields: str) -> dict[str, str]:
    form = load_payload("twilio_whatsapp_inbound.json")
    form.update(
        Body=body,
        MessageSid=sid,
        SmsMessageSid=sid,
        SmsSid=sid,
        From=f"whatsapp:{sender}",
        WaId=sender.lstrip("+"),
        **fields,
    )
    return form


# (what the person sends, the language they chose first or None, text the reply must contain)
CASES = [
    pytest.param("LANG EN", None, "Language set to English", id="lang-en"),
    pytest.param(ELIGIBLE_WIFE, "en", "35202-*******-2 is eligible", id="eligible-bare"),
    pytest.param("35202-1234567-2", "en", "35202-*******-2 is eligible", id="eligible-dashes"),
    pytest.param("۳۵۲۰۲-۱۲۳۴۵۶۷-۲", "en", "35202-*******-2 is eligible", id="eligible-urdu-digits"),
    pytest.param("35202 1234567 2", "en", "is eligible", id="eligible-spaces"),
    pytest.param("\u200f3520212345672\u200e", "en", "is eligible", id="eligible-bidi-marks"),
    pytest.param("my cnic 35202.1234567.2 plz", "en", "is eligible", id="cnic-in-sentence"),
    pytest.param(NOT_ELIGIBLE, "en", "42101-*******-3 is not eligible", id="not-eligible"),
    pytest.param(
        UNDER_REVIEW, "en", "17301-*******-2: your household is under review", id="under-review"
    ),
    pytest.param(NOT_FOUND, "en", "61101-*******-7 is not in the", id="not-found"),
    pytest.param("352021234567", "en", "That is not a CNIC", id="twelve-digits"),
    pytest.param("35202123456712", "en", "That is not a CNIC", id="fourteen-digits"),
    pytest.param("9520212345671", "en", "That is not a CNIC", id="bad-province"),
    pytest.param("HELP", "en", "Send your CNIC to check eligibility", id="help"),
    pytest.param("menu", "en", "Send your CNIC to check eligibility", id="menu-lowercase"),
    pytest.param("", "en", "Send your CNIC to check eligibility", id="empty-body"),
    pytest.param("hello there", "en", "Sorry, we did not understand", id="letters"),
    pytest.param("😀🙏", "en", "Sorry, we did not understand", id="emoji"),
    pytest.param("LANG UR", "en", "زبان اردو", id="lang-ur"),
    pytest.param("مدد", "ur", "اہلیت کے لیے", id="help-urdu"),
    pytest.param(ELIGIBLE_WIFE, "ur", "35202-*******-2\u2069 اہل ہے", id="eligible-urdu"),
    pytest.param("madad", None, "Ahliyat ke liye CNIC bhejein", id="help-roman-urdu-guessed"),
    pytest.param(ELIGIBLE_WIFE, None, "اہل ہے", id="bare-cnic-default-urdu"),
]


@pytest.mark.parametrize(("body", "language", "expected"), CASES)
async def test_sms_case(client, registry, body, language, expected):
    if language:
        code = {"en": "EN", "ur": "UR"}[language]
        reply_text(await client.post(URL, data=sms(f"LANG {code}", "SMsetlang")))
    answer = reply_text(await client.post(URL, data=sms(body, "SMcase0001")))
    assert expected in answer


@pytest.mark.parametrize(("body", "language", "expected"), CASES[:12])
async def test_whatsapp_case(client, registry, body, language, expected):
    if language:
        reply_text(await client.post(URL, data=whatsapp("LANG EN", "SMsetlangwa")))
    answer = reply_text(await client.post(URL, data=whatsapp(body, "SMcasewa01")))
    assert expected in answer


async def test_whatsapp_help_is_formatted(client, registry):
    answer = reply_text(await client.post(URL, data=whatsapp("LANG EN", "SMwa1")))
    answer = reply_text(await client.post(URL, data=whatsapp("help", "SMwa2")))
    assert "*PAY*" in answer


async def test_language_menu_by_number_on_whatsapp(client, registry):
    menu = reply_text(await client.post(URL, data=whatsapp("lang", "SMwl1")))
    assert "*2.* اردو" in menu
    changed = reply_text(await client.post(URL, data=whatsapp("2", "SMwl2")))
    assert "زبان اردو" in changed


async def test_language_is_remembered_per_contact(client, registry, db):
    reply_text(await client.post(URL, data=sms("LANG EN", "SMrem1")))
    answer = reply_text(await client.post(URL, data=sms("زبان", "SMrem2")))
    assert "Send LANG with a code" in answer  # chosen English wins over the script guess
    async with db.sessions() as session:
        contact = await session.scalar(select(Contact).where(Contact.address == ELIGIBLE_PHONE))
    assert contact is not None and contact.language == "en"


async def test_replayed_message_sid_answers_the_same_and_does_nothing_again(client, registry, db):
    first = reply_text(await client.post(URL, data=sms("LANG EN", "SMreplay1")))
    # The replay carries a different body: it must still get the first reply, not a new one.
    again = reply_text(await client.post(URL, data=sms("LANG UR", "SMreplay1")))
    assert again == first
    after = reply_text(await client.post(URL, data=sms("HELP", "SMreplay2")))
    assert "Send your CNIC" in after  # still English: the replayed LANG UR did nothing
    async with db.sessions() as session:
        count = await session.scalar(select(func.count()).select_from(InboundMessage))
    assert count == 2


async def test_concurrent_duplicates_store_one_message(client, registry, db):
    responses = await asyncio.gather(
        *[client.post(URL, data=sms(ELIGIBLE, "SMconcurrent")) for _ in range(10)]
    )
    texts = {reply_text(r) for r in responses}
    assert len(texts) == 1
    async with db.sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(InboundMessage)
            .where(InboundMessage.external_id == "SMconcurrent")
        )
    assert count == 1


@pytest.mark.parametrize(
    ("form", "status"),
    [
        pytest.param({"From": ELIGIBLE_PHONE, "Body": "HELP"}, 400, id="no-sid"),
        pytest.param({"MessageSid": "SMx", "Body": "HELP"}, 400, id="no-from"),
        pytest.param({"MessageSid": "S" * 100, "From": ELIGIBLE_PHONE}, 400, id="sid-too-long"),
        pytest.param({f"F{i}": "x" for i in range(500)}, 400, id="too-many-fields"),
    ],
)
async def test_malformed_forms_are_clean_4xx(client, registry, form, status):
    response = await client.post(URL, data=form)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"


async def test_json_body_is_415(client, registry):
    response = await client.post(URL, json={"MessageSid": "SM1"})
    assert response.status_code == 415
    assert response.json()["status"] == 415


async def test_megabyte_body_is_413(client, registry):
    response = await client.post(
        URL,
        content=b"Body=" + b"a" * 1_000_000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


async def test_long_body_is_answered(client, registry):
    answer = reply_text(await client.post(URL, data=sms("x" * 5000, "SMlong")))
    assert answer  # Twilio caps bodies at 1600; anything longer is cut, never a crash


async def test_alphanumeric_sender_is_answered(client, registry):
    answer = reply_text(await client.post(URL, data=sms("HELP", "SMalpha", sender="BANK")))
    assert answer


@pytest.fixture
def signed(settings, monkeypatch):
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "test-auth-token-0123456789abcdef")
    get_settings.cache_clear()
    yield RequestValidator("test-auth-token-0123456789abcdef")
    get_settings.cache_clear()


@pytest.fixture
async def signed_client(signed, settings, db, redis):
    from api.chat import in_process_client
    from api.main import create_app

    async with in_process_client(create_app(get_settings()), "http://internal:9000") as http:
        yield http


async def test_valid_signature_is_accepted(signed, signed_client, registry):
    form = sms(ELIGIBLE, "SMsigned1")
    # Twilio signs the public URL; the app is reached through a proxy on another host.
    signature = signed.compute_signature(PUBLIC + URL, form)
    response = await signed_client.post(URL, data=form, headers={"X-Twilio-Signature": signature})
    assert "35202-*******-1" in reply_text(response)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda form, sig: (form, ""), id="missing"),
        pytest.param(lambda form, sig: (form, "AAAA" + sig[4:]), id="forged"),
        pytest.param(lambda form, sig: ({**form, "Body": "LANG UR"}, sig), id="body-changed"),
        pytest.param(lambda form, sig: ({**form, "Extra": "1"}, sig), id="field-added"),
    ],
)
async def test_bad_signature_is_403_and_stores_nothing(signed, signed_client, registry, db, tamper):
    form = sms(ELIGIBLE, "SMforged1")
    signature = signed.compute_signature(PUBLIC + URL, form)
    form, signature = tamper(form, signature)
    headers = {"X-Twilio-Signature": signature} if signature else {}
    response = await signed_client.post(URL, data=form, headers=headers)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(InboundMessage)) == 0


async def test_signed_urdu_body_with_blank_fields_is_accepted(signed, signed_client, registry):
    """Non-ASCII text and blank fields are decoded exactly as Twilio signed them."""
    form = sms(f"میرا شناختی کارڈ {ELIGIBLE} ہے", "SMsignedUrdu")
    assert "" in form.values()
    signature = signed.compute_signature(PUBLIC + URL, form)
    response = await signed_client.post(URL, data=form, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200
    assert "35202-*******-1" in reply_text(response)


async def test_signature_over_the_url_without_its_port_is_accepted(signed, signed_client, registry):
    """Twilio has signed URLs both with and without the port: the first HMAC tried is over the
    URL as configured, and twilio's own `validate` still accepts the other form."""
    assert PUBLIC == "http://127.0.0.1:8000"
    form = sms(ELIGIBLE, "SMnoport")
    signature = signed.compute_signature("http://127.0.0.1" + URL, form)
    response = await signed_client.post(URL, data=form, headers={"X-Twilio-Signature": signature})
    assert "35202-*******-1" in reply_text(response)


async def test_a_signature_that_is_not_ascii_is_403(signed, signed_client, registry):
    form = sms(ELIGIBLE, "SMlatin1")
    length = len(signed.compute_signature(PUBLIC + URL, form))
    headers = {"X-Twilio-Signature": ("é" * length).encode("latin-1")}
    response = await signed_client.post(URL, data=form, headers=headers)
    assert response.status_code == 403


async def test_signature_over_the_internal_url_is_refused(signed, signed_client, registry):
    form = sms(ELIGIBLE, "SMinternal")
    signature = signed.compute_signature("http://internal:9000" + URL, form)
    response = await signed_client.post(URL, data=form, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403


async def test_eligibility_outcome_is_recorded_for_the_dashboard(client, registry, db):
    reply_text(await client.post(URL, data=sms(NOT_ELIGIBLE, "SMoutcome1")))
    reply_text(await client.post(URL, data=sms("HELP", "SMoutcome2")))
    async with db.sessions() as session:
        rows = dict(
            (
                await session.execute(select(InboundMessage.external_id, InboundMessage.outcome))
            ).all()
        )
    assert rows == {"SMoutcome1": "not_eligible", "SMoutcome2": None}


async def test_a_lookup_is_recorded_with_its_reply_and_contact(client, registry, db):
    """The look-up lane answers first and records after: the row holds everything the claimed
    path's row holds."""
    answer = reply_text(await client.post(URL, data=sms(ELIGIBLE, "SMlane1")))
    async with db.sessions() as session:
        contact = await session.scalar(select(Contact).where(Contact.address == ELIGIBLE_PHONE))
        row = await session.scalar(
            select(InboundMessage).where(InboundMessage.external_id == "SMlane1")
        )
    assert contact is not None and row is not None
    assert (row.channel, row.contact_id, row.reply, row.intent, row.outcome, row.language) == (
        "sms",
        contact.id,
        answer,
        "cnic",
        "eligible",
        "ur",
    )
    assert contact.last_inbound_at is not None


async def test_a_replayed_lookup_gets_the_first_reply_whatever_it_carries(client, registry, db):
    first = reply_text(await client.post(URL, data=sms(ELIGIBLE, "SMlane2")))
    # A retry of the same MessageSid, with another CNIC and then with a flow's keyword: the
    # first answer each time, one row, and no flow started.
    assert reply_text(await client.post(URL, data=sms(NOT_FOUND, "SMlane2"))) == first
    assert reply_text(await client.post(URL, data=sms("COMPLAINT", "SMlane2"))) == first
    after = reply_text(await client.post(URL, data=sms(NOT_ELIGIBLE, "SMlane3")))
    assert "42101" in after  # idle still: a CNIC is a look-up, not a complaint's CNIC
    async with db.sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(InboundMessage)
            .where(InboundMessage.external_id == "SMlane2")
        )
    assert count == 1


async def test_a_cnic_inside_a_flow_is_not_a_lookup(client, registry, db):
    """Mid-flow, the same digits answer the flow's question (here: the complaint's CNIC)."""
    reply_text(await client.post(URL, data=sms("LANG EN", "SMflow1")))
    reply_text(await client.post(URL, data=sms("COMPLAINT", "SMflow2")))
    answer = reply_text(await client.post(URL, data=sms(ELIGIBLE, "SMflow3")))
    assert "What is the complaint about?" in answer
    assert "is eligible" not in answer
    async with db.sessions() as session:
        intent = await session.scalar(
            select(InboundMessage.intent).where(InboundMessage.external_id == "SMflow3")
        )
    assert intent == "cnic"


async def test_a_lookup_reads_the_registry_with_the_contact(
    client, registry, monkeypatch, eligibility_reads
):
    """The lane reads the household with the contact's upsert; the flow does not read it again.
    With the registry on a replica, the flow reads it there, as every other answer does."""
    from api.db import Database

    for sid, cnic in (("SMread1", NOT_ELIGIBLE), ("SMread2", NOT_FOUND)):
        reply = reply_text(await client.post(URL, data=sms(cnic, sid, sender="+923331112233")))
        assert cnic[:5] in reply
    assert eligibility_reads == []
    monkeypatch.setattr(Database, "registry_is_primary", property(lambda self: False))
    reply = reply_text(await client.post(URL, data=sms(UNDER_REVIEW, "SMread3", "+923331112244")))
    assert "17301-*******-2" in reply
    assert eligibility_reads == [UNDER_REVIEW]


async def test_households_read_ahead_answer_the_first_coarse_look_up_only(monkeypatch):
    from types import SimpleNamespace

    from api.eligibility import service as eligibility_service

    read: list[tuple[str, bool]] = []

    async def check(session, *, cnic, cutoff, full=False):
        read.append((cnic.digits, full))
        return "read from the registry"

    monkeypatch.setattr(eligibility_service, "check_eligibility", check)
    runtime = SimpleNamespace(settings=get_settings(), db=SimpleNamespace(registry_is_primary=True))
    services = LookupServices(
        runtime,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        channel="sms",
        sender=ELIGIBLE_PHONE,
        households={ELIGIBLE: ("active", 10.0, ELIGIBLE_PHONE), NOT_FOUND: None},
    )
    found = await services.eligibility(Cnic.parse(ELIGIBLE))
    assert (found.status.value, found.cnic_masked) == ("eligible", "35202-*******-1")
    assert (await services.eligibility(Cnic.parse(NOT_FOUND))).status.value == "not_found"
    assert read == []
    # Read once: asked again, or in full for a verified caller, the registry is read.
    assert await services.eligibility(Cnic.parse(ELIGIBLE)) == "read from the registry"
    assert await services.eligibility(Cnic.parse(NOT_FOUND), full=True) == "read from the registry"
    assert read == [(ELIGIBLE, False), (NOT_FOUND, True)]


async def test_the_lookup_lanes_services_refuse_to_write():
    """The lane's session is in autocommit: a flow that tried to file or send from it would
    write outside any transaction, so its services fail loudly instead."""
    services = LookupServices(None, None, channel="sms", sender=ELIGIBLE_PHONE)  # type: ignore[arg-type]
    with pytest.raises(NotALookup):
        await services.send_code(Cnic.parse(ELIGIBLE), language="en")
    with pytest.raises(NotALookup):
        await services.file_grievance(
            ELIGIBLE, category=Category.OTHER, description="x", language="en"
        )


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(st.text())
def test_twiml_is_what_twilios_messaging_response_writes(text):
    expected = MessagingResponse()
    if text:
        expected.message(text)
    assert twiml(text) == str(expected)


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/webhooks/twilio/messaging", b""),
        ("/webhooks/twilio/status", b"outbox=42"),
        ("/webhooks/twilio/status", b"outbox=42&note=a%20b+c&empty="),
    ],
)
def test_the_signed_url_is_the_one_starlette_would_name(path, query):
    """`public_url` reads the scope, not `request.url`: the same URL for the paths Twilio calls,
    with the query exactly as sent (Twilio signs it as it sent it)."""
    from starlette.requests import Request

    from api.webhooks.twilio import public_url

    settings = get_settings().model_copy(update={"public_base_url": "https://rabta.example.pk/"})
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "query_string": query,
        "headers": [(b"host", b"10.0.0.7:8000")],
        "server": ("10.0.0.7", 8000),
        "scheme": "http",
    }
    request = Request(scope)
    expected = "https://rabta.example.pk" + request.url.path
    if request.url.query:
        expected += "?" + request.url.query
    assert public_url(request, settings) == expected
    assert public_url(request, settings).startswith("https://rabta.example.pk/webhooks/twilio/")
