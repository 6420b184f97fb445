"""What the fuzzers and fault runs found, pinned down so it stays fixed."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy import text as sql
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from api.problems import DATABASE_RETRY_AFTER, install, is_database_unavailable
from api.registry.models import InboundMessage
from bot.dialogue.keywords import Intent, parse
from tests.api.test_twilio_webhook import URL, sms
from tests.conftest import ELIGIBLE, ELIGIBLE_PHONE, asgi_post_scope, load_payload
from tests.ussd.conftest import ussd_form


@pytest.mark.parametrize("field", ["MessageSid", "From", "Body", "To"])
async def test_a_nul_character_in_a_twilio_form_is_a_400_not_a_500(client, registry, db, field):
    """PostgreSQL text cannot hold NUL: schemathesis' first run got 5xx for such forms."""
    form = sms("HELP", "SMnul0001")
    form[field] = form[field][:3] + "\x00" + form[field][3:]
    response = await client.post(URL, data=form)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(InboundMessage)) == 0


async def test_a_nul_character_in_a_status_callback_is_a_400(client, registry):
    form = load_payload("twilio_status_callback.json")
    form["MessageSid"] = "SM\x00" + "0" * 32
    response = await client.post("/webhooks/twilio/status", data=form)
    assert response.status_code == 400


@pytest.mark.parametrize("space", ["\n", "\t", "\r\n", " \n ", "\u00a0"])
def test_a_keyword_and_its_argument_on_two_lines(space):
    """Found by the keyword property: "PAY" then the CNIC on the next line read as a bare CNIC."""
    command = parse(f"PAY{space}{ELIGIBLE}")
    assert command.intent is Intent.PAY and command.argument == ELIGIBLE
    complaint = parse(f"COMPLAINT{space}paise nahi mile\nteen mahine se")
    assert complaint.intent is Intent.COMPLAINT
    assert complaint.argument == "paise nahi mile\nteen mahine se"


async def test_pay_on_two_lines_over_sms(client, registry):
    from tests.api.test_twilio_webhook import reply_text

    await client.post(URL, data=sms("LANG EN", "SMtwolines1", sender=ELIGIBLE_PHONE))
    answer = reply_text(
        await client.post(URL, data=sms(f"PAY\n{ELIGIBLE}", "SMtwolines2", sender=ELIGIBLE_PHONE))
    )
    assert "is eligible" not in answer  # not read as a bare CNIC look-up


class _Orig(Exception):
    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("exc", "unavailable"),
    [
        (ConnectionRefusedError(111, "refused"), True),
        (DBAPIError("x", {}, _Orig("the database system is starting up", "57P03")), True),
        (DBAPIError("x", {}, _Orig("connection was closed", "08003")), True),
        (DBAPIError("x", {}, _Orig("too many connections", "53300")), True),
        (InterfaceError("x", {}, _Orig("the underlying connection is closed")), True),
        (OperationalError("x", {}, _Orig("database is locked")), True),
        (
            DBAPIError("x", {}, _Orig("invalid byte sequence for encoding UTF8: 0x00", "22021")),
            False,
        ),
        (IntegrityError("x", {}, _Orig("duplicate key", "23505")), False),
        (OperationalError("x", {}, _Orig("no such table: persons")), False),
        (InterfaceError("x", {}, _Orig("Error binding parameter 1")), False),
        (ValueError("not a database error"), False),
        (TimeoutError(), True),  # asyncpg's connect timeout, not wrapped by SQLAlchemy
        (PoolTimeout("QueuePool limit of size 10 overflow 20 reached"), True),
    ],
)
def test_only_a_lost_database_is_a_503(exc, unavailable):
    """A restart or failover is worth retrying (503); a wrong query or value is a bug (500)."""
    assert is_database_unavailable(exc) is unavailable


async def test_a_database_that_accepts_and_never_answers_is_unavailable_in_bounded_time(
    monkeypatch,
):
    """A partition, or a server that accepts the connection and says nothing: asyncpg waited
    60 s for it, and its TimeoutError reached the client as a 500. Now the wait is bounded and
    the request is answered 503 with Retry-After (the Twilio webhook holds the message)."""
    from api import db as database

    async def say_nothing(reader, writer):
        await reader.read()  # until the client gives up and closes

    server = await asyncio.start_server(say_nothing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setattr(database, "CONNECT_TIMEOUT", 0.3)
    engine = database.create_engine(f"postgresql+asyncpg://rabta@127.0.0.1:{port}/rabta")
    app = FastAPI()
    install(app)

    @app.get("/read")
    async def read() -> dict[str, int]:
        async with engine.connect() as connection:
            await connection.execute(sql("SELECT 1"))
        return {"read": 1}

    try:
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
            asyncio.timeout(5),
        ):
            response = await http.get("/read")
    finally:
        await engine.dispose()
        server.close()
    assert response.status_code == 503
    assert response.headers["retry-after"] == str(DATABASE_RETRY_AFTER)


async def _asgi_post(app, path: str, body: bytes, content_type: bytes, *, sent: int) -> list:
    """POST `body` straight to the ASGI app as uvicorn would for a client that sends its
    first `sent` bytes and then closes the connection; what the app sent back."""
    scope = asgi_post_scope(path, content_type, len(body))
    messages = [{"type": "http.request", "body": body[:sent], "more_body": True}] if sent else []
    messages.append({"type": "http.disconnect"})
    sent_back: list = []

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent_back.append(message)

    await app(scope, receive, send)  # raising here is what uvicorn logs as an ASGI error
    return sent_back


FORM = b"application/x-www-form-urlencoded"


@pytest.mark.parametrize("sent", [0, 20], ids=["nothing-sent", "half-a-body"])
@pytest.mark.parametrize(
    ("path", "body", "content_type", "status"),
    [
        pytest.param(URL, urlencode(sms(ELIGIBLE, "SMgone00001")).encode(), FORM, 499, id="sms"),
        pytest.param(
            "/webhooks/ussd",
            urlencode(ussd_form("ATUid_gone", ELIGIBLE_PHONE, "")).encode(),
            FORM,
            499,
            id="ussd",
        ),
        pytest.param(
            "/webhooks/twilio/status",
            urlencode(load_payload("twilio_status_callback.json")).encode(),
            FORM,
            499,
            id="status-callback",
        ),
        # FastAPI's own JSON routes answer a body they could not read with their 400.
        pytest.param(
            "/v1/otp", b'{"cnic": "' + ELIGIBLE.encode() + b'"}', b"application/json", 400, id="v1"
        ),
    ],
)
async def test_a_client_that_leaves_before_its_body_is_read_is_one_log_line_not_an_error(
    app, client, registry, db, caplog, path, body, content_type, status, sent
):
    """Found by the bench: every request still queued when its client closed the connection (a
    gateway giving up, wrk stopping) raised `ClientDisconnect` reading its body, which was
    logged twice with its traceback as an unhandled error and counted as a 500. Nothing was done
    for it and no one is there to answer: now one INFO line, and the metrics count a 499."""
    caplog.set_level(logging.INFO)
    sent_back = await _asgi_post(app, path, body, content_type, sent=sent)
    assert sent_back[0]["status"] == status
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(InboundMessage)) == 0
    if status == 499:
        assert "client went away before POST " + path in caplog.text
        metrics = (await client.get("/metrics")).text
        assert f'rabta_http_requests_total{{method="POST",route="{path}",status="499"}}' in metrics
