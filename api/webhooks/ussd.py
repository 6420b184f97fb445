"""`POST /webhooks/ussd`: USSD sessions from a gateway, Africa's Talking convention (SPEC §6).

Form fields `sessionId`, `serviceCode`, `phoneNumber`, `text` (every input so far joined by `*`),
`networkCode`; the answer is `text/plain`, `CON …` while the menu goes on, `END …` when it
stops, one screen long (182 GSM-7 characters; see bot.channels.ussd). The menus themselves are
bot.dialogue.ussd; this edge does what the chat edge does for SMS:

    session state (Redis) ─► contact (language, verification) ─► menu machine ─► screen
        ─► stored with the dedup record (sessionId, phone, text) ─► session state saved

The network gives the phone number, so it proves the sender (`Inbound.phone` on chat channels).
A replayed hit (the same session, phone and text) gets the stored screen and changes nothing.
A hit on a screen that only reads (the language and main menus, the eligibility CNIC, the
person's programmes: most hits) takes the look-up lane: answered first, each statement
committing by itself, and recorded with its screen in one INSERT before the screen goes out. A
hit that may send a code or file a complaint is claimed first, in the transaction that files
the complaint or queues the code.

A request that is not a USSD hit (no session or phone, a phone that is no number, a `text` no
handset can type) gets a 400 problem; a 1 MB body never reaches here (BodySizeLimit answers
413); anything that goes wrong while answering becomes an `END` screen, never a 500 the gateway
would show as a network error.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from dataclasses import dataclass

from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.bot_services import NotALookup
from api.conversations import repository
from api.conversations.service import contact_and_services
from api.db import utc
from api.deps import runtime_of
from api.hot import Executor
from api.identity import InvalidPhone, keyed_digest, mask_phone, normalise_phone
from api.metrics import MESSAGES, REPLAYS
from api.outbox.service import enqueue
from api.problems import Problem, is_database_unavailable
from api.runtime import Runtime
from api.surge import LateAnswers, RedisAway, answered_within
from api.webhooks.forms import MAX_FIELDS, URLENCODED, urlencoded_fields
from bot.dialogue import ussd as menus
from bot.dialogue.ussd import UssdState, UssdStore

log = logging.getLogger(__name__)

TEXT_PLAIN = "text/plain; charset=utf-8"
#: Longest sessionId accepted: Africa's Talking sends `ATUid_` + 32 hex digits.
MAX_SESSION_ID = 64
#: Longest `text` accepted: every input of a three-minute session, with room to spare.
MAX_TEXT = 1000


@dataclass(frozen=True, slots=True)
class UssdHit:
    """One gateway request, validated."""

    session_id: str
    phone: str
    text: str
    service_code: str = ""
    network_code: str = ""

    def external_id(self, secret: str) -> str:
        """The dedup id: the session and a keyed hash of the phone and text (64 characters at
        most).

        The phone is hashed in so that a forged hit from another number under a known session
        id never receives someone else's stored screen. The hash is keyed (`secret`, the
        service's key): the text holds every CNIC typed in the session, and the inbound log,
        which keeps no message text, must not keep one an unkeyed hash would give back to
        whoever tries every CNIC against the phones in `contacts`.
        """
        digest = keyed_digest(secret.encode(), "ussd-hit", self.phone, self.text)[:16]
        session = self.session_id
        if len(session) > 47:
            session = "h" + hashlib.sha256(session.encode()).hexdigest()[:46]
        return f"{session}:{digest}"


async def ussd(request: Request) -> Response:
    """One step of a USSD session; the answer is the next screen."""
    runtime = runtime_of(request)
    hit = await _read_hit(request)
    try:
        body = await answered_within(answer(runtime, hit))
        if body is None:
            # The database or Redis stalls: the gateway would end the session with a network
            # error at 15 s. "Try again later" says what to do (a hit claimed with its side
            # effects commits them all or none).
            runtime.late.happened(LateAnswers.USSD_BUSY)
            log.info("ussd hit not answered in time (session %s)", hit.session_id)
            body = error_screen(runtime)
    except _Unanswered:
        body = error_screen(runtime)
    except Exception as exc:
        # The gateway shows a 500 as a network error; an END screen at least says what to do.
        if is_database_unavailable(exc):
            runtime.late.happened(LateAnswers.USSD_BUSY_AWAY)
            log.info("ussd hit not answered: database away (session %s)", hit.session_id)
        else:
            log.exception("ussd hit failed (session %s)", hit.session_id)
        body = error_screen(runtime)
    return Response(content=body, media_type=TEXT_PLAIN)


#: A plain Starlette route, as the SMS webhook's (api/webhooks/twilio.py), for the same reason.
route = Route("/webhooks/ussd", ussd, methods=["POST"])


async def _read_hit(request: Request) -> UssdHit:
    content_type = request.headers.get("content-type", "")
    fields: dict[str, str]
    if content_type.startswith(URLENCODED):
        fields = await urlencoded_fields(request)
    elif content_type.startswith("multipart/form-data"):
        try:
            form = await request.form(max_fields=MAX_FIELDS)
        except Exception:  # a malformed multipart body: the parser's many errors, one answer
            raise Problem(400, "The form could not be read.") from None
        fields = {key: value for key, value in form.items() if isinstance(value, str)}
    else:
        raise Problem(415, "USSD gateways post form fields.")
    session_id = fields.get("sessionId", "").strip()
    raw_phone = fields.get("phoneNumber", "").strip()
    text = fields.get("text", "")
    if not session_id or not raw_phone:
        raise Problem(400, "sessionId and phoneNumber are required.")
    if len(session_id) > MAX_SESSION_ID or not session_id.isascii() or not session_id.isprintable():
        raise Problem(400, "sessionId is not a session id.")
    if len(text) > MAX_TEXT:
        raise Problem(400, f"text is longer than {MAX_TEXT} characters.")
    try:
        phone = normalise_phone(raw_phone[:32])
    except InvalidPhone:
        log.warning("ussd hit refused: phoneNumber is not a phone number")
        raise Problem(400, "phoneNumber is not a phone number.") from None
    return UssdHit(
        session_id=session_id,
        phone=phone,
        text=text,
        service_code=fields.get("serviceCode", "")[:32],
        network_code=fields.get("networkCode", "")[:16],
    )


#: Screens whose input only reads (the registry, the look-up counters) and at most changes
#: the contact (a language chosen, a phone's own CNIC proved): a hit on one of them takes the
#: look-up lane. Codes, complaints and tickets are asked for on the others, and write.
READ_ONLY_SCREENS = frozenset(
    {
        menus.Screen.LANGUAGE,
        menus.Screen.MAIN,
        menus.Screen.ELIGIBILITY_CNIC,
        menus.Screen.PROGRAMMES,
        menus.Screen.PROGRAMME_LIST,
    }
)


@dataclass(slots=True)
class _Loaded:
    """The session as Redis had it when the hit arrived, and what the hit asks of it."""

    state: UssdState | None
    #: The session's seen-mark was found (its state may have expired since): a save need not
    #: set it again.
    seen: bool
    foreign: bool
    plan: menus.Plan

    @property
    def read_only(self) -> bool:
        """At most one input, on a screen that only reads: the look-up lane may answer it."""
        if len(self.plan.inputs) > 1:
            return False
        if self.state is None or self.plan.fresh or self.plan.expired:
            return True  # the first screen (language or main menu), or "session expired"
        return self.state.screen in READ_ONLY_SCREENS

    @property
    def lookup_of(self) -> str | None:
        """The CNIC this hit looks up (a CNIC typed on the eligibility screen or the first
        menu), if any."""
        state, plan = self.state, self.plan
        if state is None or plan.fresh or plan.expired or len(plan.inputs) != 1:
            return None
        if state.screen is not menus.Screen.ELIGIBILITY_CNIC and not menus.takes_a_cnic(state):
            return None  # (a CNIC typed on the first menu is looked up as on its own screen)
        return menus.parse_cnic(plan.inputs[0])


async def answer(runtime: Runtime, hit: UssdHit, *, now: float | None = None) -> str:
    """The screen for one hit, exactly once per (session, phone, text).

    Most hits are menu steps and eligibility look-ups, which change nothing but the look-up
    counters and the contact: like an SMS look-up (api/conversations/service.py), they are
    answered first, each statement committing by itself, and recorded with their screen in one
    INSERT before the screen goes out. A hit that may send a code or file a complaint is claimed
    first, in the transaction that stores its screen with what it did.
    """
    now = time.time() if now is None else now
    store = UssdStore(runtime.redis, secret=runtime.settings.secret_key)
    loaded = await _load(runtime, store, hit)
    turn: _Turn | str | None = None
    if loaded.read_only:
        try:
            turn = await _look_up(runtime, hit, loaded, now)
        except NotALookup as exc:
            # The screen table and READ_ONLY_SCREENS disagree: answer it the safe way (the
            # look-up counters may count this hit twice).
            log.error("ussd hit taken for a look-up tried to write (%s): answered claimed", exc)
            loaded = await _load(runtime, store, hit)
    if turn is None:
        turn = await _claimed(runtime, hit, loaded, now)
    if isinstance(turn, str):
        log.info("replayed ussd hit: answering with the stored screen")
        REPLAYS.labels(menus.CHANNEL).inc()
        return turn
    state, outcome = turn.state, turn.outcome
    try:
        if not loaded.foreign:
            await store.save(state, seen=loaded.seen)
    except RedisError:
        runtime.redis_away.happened(RedisAway.USSD_UNSAVED)
        log.info("ussd session state not saved (Redis): the next step will say dial again")
    MESSAGES.labels(menus.CHANNEL, outcome.language, state.screen.value).inc()
    log.info(
        "ussd screen=%s end=%s lang=%s chars=%d phone=%s",
        state.screen.value,
        outcome.end,
        outcome.language,
        len(outcome.body),
        mask_phone(hit.phone),
    )
    return outcome.body


async def _load(runtime: Runtime, store: UssdStore, hit: UssdHit) -> _Loaded:
    try:
        state, seen, foreign = await store.load(hit.session_id, hit.phone)
    except RedisError:
        # Without its state a session cannot go on; nothing is recorded, so a retry may.
        runtime.redis_away.happened(RedisAway.USSD_UNREAD)
        log.info("ussd session state unavailable (Redis)")
        raise _Unanswered from None
    # A session id is the gateway's; one arriving from another phone gets "dial again" and
    # leaves the session of the phone that dialled it untouched.
    if foreign:
        log.warning("ussd session %s hit from another phone: not continued", hit.session_id)
    return _Loaded(state, seen, foreign, menus.plan(state, seen=seen, text=hit.text))


async def _look_up(runtime: Runtime, hit: UssdHit, loaded: _Loaded, now: float) -> _Turn | str:
    """The look-up lane: answered first, recorded with its screen after (the stored screen
    when the hit was recorded before: a replay)."""
    async with runtime.db.autocommit() as session:
        turn = await _turn(runtime, session, hit, loaded, now, lookup=True)
        earlier = await repository.record_answered(
            session,
            channel=menus.CHANNEL,
            external_id=hit.external_id(runtime.settings.secret_key),
            contact_id=turn.contact_id,
            reply=turn.outcome.body,
            intent=turn.state.screen.value,
            language=turn.outcome.language,
        )
        if earlier is not None:
            return earlier.reply or error_screen(runtime)
    return turn


async def _claimed(runtime: Runtime, hit: UssdHit, loaded: _Loaded, now: float) -> _Turn | str:
    """Claim the hit first; what it files or queues commits with its screen."""
    async with runtime.db.transaction() as session:
        claim = await repository.claim_inbound(
            session, channel=menus.CHANNEL, external_id=hit.external_id(runtime.settings.secret_key)
        )
        if claim.replay and claim.reply:
            return claim.reply
        turn = await _turn(runtime, session, hit, loaded, now, lookup=False)
        if turn.outcome.filed is not None:
            await _send_ticket_by_sms(runtime, session, hit.phone, turn.state, turn.outcome)
        await repository.finish_inbound(
            session,
            claim,
            contact_id=turn.contact_id,
            reply=turn.outcome.body,
            intent=turn.state.screen.value,
            language=turn.outcome.language,
        )
    return turn


@dataclass(slots=True)
class _Turn:
    """One hit answered, before its state is saved."""

    state: UssdState
    outcome: menus.Outcome
    contact_id: int


async def _turn(
    runtime: Runtime,
    session: Executor,
    hit: UssdHit,
    loaded: _Loaded,
    now: float,
    *,
    lookup: bool,
) -> _Turn:
    """Contact → session state → menu machine → screen, with the contact saved.

    In the look-up lane (`lookup`), a CNIC typed on the eligibility screen has its household
    read with the contact, as an SMS look-up does (api/conversations/service.py).
    """
    # The session as it goes on (None: it starts, or starts over, with this hit).
    state = None if loaded.plan.fresh else loaded.state
    contact, services = await contact_and_services(
        runtime,
        session,
        channel=menus.CHANNEL,
        address=hit.phone,
        phone=hit.phone,
        lookup=lookup,
        lookup_of=loaded.lookup_of if lookup else None,
        known=_session_contact(state) if state is not None else None,
    )
    if state is None:
        state = _new_state(runtime, contact, hit, now)
    state.contact_id = contact.id
    outcome = await menus.handle(
        state,
        loaded.plan,
        services,
        policy=runtime.policy,
        renderer=runtime.renderer,
        now=now,
    )
    if state.language_chosen:
        contact.language = state.language
    if state.verified_cnic and state.verified_until:
        contact.verified_cnic = state.verified_cnic
        contact.verified_until = dt.datetime.fromtimestamp(state.verified_until, dt.UTC)
    await repository.save_contact(session, contact)
    return _Turn(state, outcome, contact.id)


def _session_contact(state: UssdState) -> repository.ContactRecord | None:
    """The contact the session found at its first hit, as its state holds it: the session
    started with the contact's language and live verification, and every change to either is
    saved to both, so later hits need no upsert (their `last_inbound_at` stays the session's
    start). None for a state written before sessions kept their contact."""
    if state.contact_id is None:
        return None
    until = state.verified_until
    return repository.known_contact(
        state.contact_id,
        phone=state.phone,
        language=state.language,
        verified_cnic=state.verified_cnic,
        verified_until=dt.datetime.fromtimestamp(until, dt.UTC) if until else None,
    )


class _Unanswered(Exception):
    """The hit cannot be answered now; the transaction rolls back and an END screen says so."""


def _new_state(
    runtime: Runtime, contact: repository.ContactRecord, hit: UssdHit, now: float
) -> UssdState:
    """A session starting: the language and verification its contact remembers."""
    # A language chosen by SMS counts on USSD too: the same phone, the same person (the contact
    # upsert gave this contact the language of the phone's other contacts).
    language = contact.language
    state = UssdState(
        session_id=hit.session_id,
        phone=hit.phone,
        default_language=runtime.settings.default_language,
        language=language,
    )
    if contact.verified_cnic and contact.verified_until:
        until = utc(contact.verified_until)
        if until.timestamp() > now:
            state.verified_cnic = contact.verified_cnic
            state.verified_until = until.timestamp()
    return state


async def _send_ticket_by_sms(
    runtime: Runtime, session: AsyncSession, phone: str, state: UssdState, outcome: menus.Outcome
) -> None:
    """A USSD screen vanishes once read: the ticket id also goes to the caller by SMS, in their
    own language (and script), naming whose complaint it is (SPEC §3)."""
    filed = outcome.filed
    if filed is None:
        return
    language = state.person_language
    body = runtime.renderer.render_text(
        "grievance/filed",
        {"ticket": filed.ticket_id, "cnic": outcome.filed_for, "due": filed.due_at.date()},
        language=language,
        channel="sms",
    )
    await enqueue(
        session,
        channel="sms",
        to=phone,
        body=body,
        kind="grievance_filed",
        language=language,
        priority=1,
        dedup_key=f"ussd-filed:{filed.ticket_id}",
    )


def error_screen(runtime: Runtime) -> str:
    """`END` and "try again later", in the default language's USSD form: for a hit that could
    not be answered, and for one the load-shedding gate refused (api/surge.py)."""
    try:
        text = runtime.renderer.render_text(
            "errors/try_later",
            {},
            language=menus.ussd_language(runtime.settings.default_language),
            channel=menus.CHANNEL,
        )
    except Exception:  # even then the gateway gets a well-formed (if wordless) last screen
        log.exception("ussd error screen could not be rendered")
        text = ""
    return "END " + text
