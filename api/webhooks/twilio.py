"""`POST /webhooks/twilio/messaging`: SMS and WhatsApp from Twilio, answered in TwiML.

Verify the signature (over the public URL Twilio called, not the one a proxy rewrote), dedup on
MessageSid, hand the message to the conversation, answer with `<Response><Message>`. A message
the worker has no room for, or cannot answer (the database away, or it or Redis stalled past
`RABTA_SURGE_ANSWER_WITHIN_MS`), is held and answered later through the outbox (api/held.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from xml.sax.saxutils import escape

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator, compare
from twilio.twiml.messaging_response import MessagingResponse

from api.conversations.service import Attempt, receive
from api.deps import runtime_of
from api.identity import InvalidPhone, normalise_phone, normalise_text
from api.problems import Problem, is_database_unavailable, is_statement_refused
from api.settings import Settings
from api.surge import HOLD, LateAnswers, answered_within
from api.webhooks.forms import URLENCODED, urlencoded_fields
from bot.channels.base import Inbound
from bot.dialogue import keywords
from bot.dialogue.keywords import Intent

log = logging.getLogger(__name__)

TWIML = "application/xml"


def public_url(request: Request, settings: Settings) -> str:
    """The URL as Twilio called it: PUBLIC_BASE_URL + path + query (proxies rewrite the host).
    Read from the ASGI scope: the paths Twilio calls are Rabta's own, plain ASCII, and building
    Starlette's `request.url` (host header, port, urlsplit) for it cost 1.7 % of an SMS."""
    url = settings.public_base_url.rstrip("/") + request.scope["path"]
    query = request.scope.get("query_string", b"")
    if query:
        url += "?" + query.decode()
    return url


def _signed(
    validator: RequestValidator, url: str, params: Mapping[str, str], signature: str
) -> bool:
    """`validator.validate`, which accepts the signature over the URL with or without its
    default port and so computes both HMACs for every request, tried after the URL as Rabta
    knows it, which is what Twilio signs when the webhook is configured as PUBLIC_BASE_URL says:
    one HMAC for a genuine request, and the same URLs accepted as before."""
    if "bodySHA256" not in url and compare(validator.compute_signature(url, params), signature):
        return True
    return bool(validator.validate(url, params, signature))


async def verified_form(request: Request, settings: Settings) -> Mapping[str, str]:
    """The POSTed form, after checking `X-Twilio-Signature` when an auth token is configured
    (made with it, or with the token being rotated out, `TWILIO_AUTH_TOKEN_PREVIOUS`)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(URLENCODED):
        raise Problem(415, "Twilio webhooks are form-encoded.")
    params = await urlencoded_fields(request)
    if tokens := settings.twilio_webhook_tokens:
        signature = request.headers.get("X-Twilio-Signature", "")
        url = public_url(request, settings)
        if not signature or not any(
            _signed(RequestValidator(token), url, params, signature) for token in tokens
        ):
            log.warning("twilio webhook refused: %s signature", "bad" if signature else "missing")
            raise Problem(403, "The request is not signed by Twilio.")
    if any("\x00" in key or "\x00" in value for key, value in params.items()):
        # Twilio never sends a NUL, and PostgreSQL text cannot hold one (it would be a 500).
        raise Problem(400, "The form holds a NUL character.")
    return params


async def messaging(request: Request) -> Response:
    """An inbound SMS or WhatsApp message; the reply goes back in the TwiML response."""
    runtime = runtime_of(request)
    params = await verified_form(request, runtime.settings)
    sid = params.get("MessageSid", "").strip()
    sender = params.get("From", "").strip()
    if not sid or not sender:
        raise Problem(400, "MessageSid and From are required.")
    if len(sid) > 64 or len(sender) > 64:
        raise Problem(400, "MessageSid or From is too long.")
    channel = "whatsapp" if sender.lower().startswith("whatsapp:") else "sms"
    try:
        phone: str | None = normalise_phone(sender)
    except InvalidPhone:
        phone = None  # an alphanumeric or short-code sender: answer, but it proves no one
    inbound = Inbound(
        channel=channel,
        sender=phone or sender,
        text=message_text(params)[:1600],
        message_id=sid,
        phone=phone,
        media=carries_media(params),
    )
    if HOLD in request.scope:
        # The worker has no room to answer now (api/surge.py): store it, answer it later.
        return await _held(request, inbound)
    # What the try did before it failed or was called off: its look-up's limits, once counted,
    # are not counted again when the message is held and answered later.
    attempt = Attempt()
    try:
        answer = await answered_within(receive(runtime, inbound, attempt))
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        # The database went away under it (or gave up on a statement for now: a cancel, a
        # deadlock). Twilio does not send it again after a 503: hold it (in Redis while the
        # database is away) and answer it by SMS once it is back.
        runtime.late.happened(LateAnswers.HELD_AWAY)
        refused = is_statement_refused(exc)
        log.info("twilio message held: %s", "statement refused" if refused else "database away")
        inbound = replace(inbound, counted=attempt.counted)
        return await _held(request, inbound, database_away=not refused)
    if answer is None:
        # The database (or Redis) stalls rather than refusing: Twilio would time out at 15 s
        # and not send it again. Hold it and answer it by SMS later (should the answer called
        # off have been recorded after all, that is a replay then: one reply all the same).
        runtime.late.happened(LateAnswers.HELD_LATE)
        log.info("twilio message held: no answer in time")
        return await _held(request, replace(inbound, counted=attempt.counted))
    return Response(content=twiml(answer.text), media_type=TWIML)


#: WhatsApp message types (Twilio's `MessageType`) that carry words Rabta reads in `Body`.
_TEXT_TYPES = frozenset({"", "text", "button", "interactive"})


def carries_media(params: Mapping[str, str]) -> bool:
    """The message is (or holds) a voice note, photo, file, sticker, contact card or location:
    `NumMedia` above 0, a `Latitude`, or a WhatsApp `MessageType` that is not text."""
    try:
        media = int(params.get("NumMedia") or 0) > 0
    except ValueError:
        media = False
    kind = params.get("MessageType", "").strip().casefold()
    return media or bool(params.get("Latitude")) or kind not in _TEXT_TYPES


def message_text(params: Mapping[str, str]) -> str:
    """What the person said: a WhatsApp button's payload (`ButtonPayload`, the reply the
    button was made with) when it is one of Rabta's requests, else the `Body` (which holds the
    button's label, `ButtonText`, for a button press)."""
    body = params.get("Body", "")
    payload = params.get("ButtonPayload", "").strip()
    if payload and keywords.parse(normalise_text(payload)).intent is not Intent.UNKNOWN:
        return payload
    return body or params.get("ButtonText", "")


async def _held(request: Request, inbound: Inbound, *, database_away: bool = False) -> Response:
    """Hold the message (api/held.py) and answer 200 with no reply yet; what the hold raised
    (the database and Redis both away) goes to the error handlers, a 503."""
    await runtime_of(request).holds.hold(inbound, database_away=database_away)
    drainer = getattr(request.app.state, "held", None)
    if drainer is not None:
        drainer.wake()
    return Response(content=twiml(""), media_type=TWIML)


#: A plain Starlette route, tried before every other (api/main.py), not a FastAPI one: the
#: endpoint reads its request by hand, and FastAPI's route machinery around it (its included
#: router's layers, the dependency solver with nothing to solve) cost 5.9 % of an SMS.
#: api/openapi.py documents it as FastAPI would.
route = Route("/webhooks/twilio/messaging", messaging, methods=["POST"])


def _frame() -> tuple[str, str, str]:
    """What twilio's `MessagingResponse` writes around one message's text, and with none."""
    mark = "RABTA-REPLY"
    response = MessagingResponse()
    response.message(mark)
    head, tail = str(response).split(mark)
    return head, tail, str(MessagingResponse())


_HEAD, _TAIL, _NO_REPLY = _frame()


def twiml(text: str) -> str:
    """`<Response><Message>text</Message></Response>` (a bare `<Response />` for no reply), as
    twilio's `MessagingResponse` writes it: its own frame, written once, with the text escaped
    as its ElementTree escapes text (& < >). Building the tree per reply cost 4 % of an SMS;
    tests/api/test_twilio_webhook.py holds the two equal for any text."""
    return _HEAD + escape(text) + _TAIL if text else _NO_REPLY
