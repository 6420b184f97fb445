"""The USSD menu machine (Africa's Talking convention): numbered screens, one input per hit.

USSD is menu-driven and lives for one short session, unlike the keyword chat of SMS, so it has
its own machine; it calls the same `Services` and renders through the same `Renderer`.

    dial ─► LANGUAGE (unless the contact, or the phone's SMS contact, has one) ─1..6─► MAIN
    MAIN ─1─► ELIGIBILITY_CNIC ─CNIC─┬─ anyone else's, or not eligible ───► END coarse status
                                     └─ the person's own (from its registered mobile, or
                                        verified), eligible ─► PROGRAMMES ─1─► END schedule
                                          (a count of them) └─2─► PROGRAMME_LIST ─1─► END schedule
         ─2─► who? ─┬─ one person (phone's, or verified) ─────────────────────► END schedule
                    ├─ several on this phone ─► PERSON ─n─────────────────────► END schedule
                    └─ nobody ─► VERIFY_CNIC ─CNIC─► (code by SMS) VERIFY_CODE ─► END schedule
         ─3─► who? (as above) ─► CATEGORY ─1..6─► CALLBACK ─1 yes / 2 no─► END ticket id
         ─4─► TRACK ─1─► TICKET ─ticket─► owner verified? ─yes─► END status
                   │                                    └─no──► VERIFY_CODE ─► END status
                   └─2─► who? (as above) ─► END the last two complaints
         ─5─► LANGUAGE ─1..6─► MAIN
         ─CNIC─► as ELIGIBILITY_CNIC (a CNIC typed on the main menu, as sent to 8171; on
                 the first screen too when that is LANGUAGE, which `0` then goes back to)
    PERSON lists at most six; more go five at a time behind `98 More`, and takes one of its
    CNICs typed out as its number; PROGRAMME_LIST as many as fit.
    Every screen: `0` back one screen, `00` MAIN. A key reads the same in Urdu or Arabic-Indic
    digits and with the keypad's `#` or `*` typed beside it. Input a screen cannot use: the same
    screen again, titled with what was wrong (CON). END on completion, on errors, and when the
    session's state has expired ("dial again").

Language on USSD. The person's language (en, ur, ur_Latn, sd, ps, pa_Arab) is chosen on the first
screen and remembered on their contact, but USSD screens are rendered in English or Roman Urdu
only: `ur`, `sd`, `ps` and `pa_Arab` read Roman Urdu here (`ussd_language`). An Arabic-script
screen is UCS-2, about 80 characters, and operators do not all render it; a payment screen with
a 60-character place name, an amount, a window and a status cannot fit 80 characters, and a
session that switched script whenever a screen was too long would confuse more than help. SMS
codes, grievance updates and every other channel keep the person's own script. The language menu
is the one exception: each language is named in its own script, so people recognise theirs,
and that screen is checked against the 80-character UCS-2 budget.

Reading the `text` path. `text` holds every input so far joined by `*`, which is ambiguous when
someone types `*` inside an input (a CNIC typed `35202*1234567*1`) or sends an empty one (`1**2`).
The session's state keeps the last `text` seen, so the new input is exactly what follows it
(`plan`). Without state for a session never seen, the inputs are the `*`-separated steps (a
dial string like `*262*1#` arrives as `text=1`); without state for a session seen before, the
session has expired.
"""

from __future__ import annotations

import enum
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Final

import redis.asyncio as aioredis

from api.eligibility.schemas import EligibilityStatus, ProgrammeState
from api.grievances.schemas import Category, GrievanceOut
from api.grievances.ticket import normalise_ticket_id
from api.identity import Cnic, cnic_digits, keyed_digest, mask_cnic, normalise_text
from api.otp.service import CheckOutcome, OtpUnavailable
from api.sealed import sealer_for
from bot.channels.base import Option, Reply
from bot.channels.ussd import SCREEN_GSM7, SCREEN_UCS2, fits, screen
from bot.dialogue.engine import limited
from bot.dialogue.flows.eligibility import asked_by_the_person, enrolled_in
from bot.dialogue.flows.grievance import CATEGORIES
from bot.dialogue.flows.who import named, person_choice_masks
from bot.dialogue.turn import Policy
from bot.i18n import LANGUAGES
from bot.ports import CodeStatus, Services
from bot.render import Renderer
from bot.segments import measure

log = logging.getLogger(__name__)

CHANNEL: Final = "ussd"
#: A USSD session lives about 3 minutes (Africa's Talking); its state lives as long after each hit.
SESSION_SECONDS: Final = 180
#: How long a session id is remembered as seen, to tell "expired" from "new" (AT ids are unique).
SEEN_SECONDS: Final = 3600
#: Languages USSD screens are written in; every other language reads Roman Urdu here.
SCREEN_LANGUAGES: Final = frozenset({"en", "ur_Latn"})

BACK: Final = "0"
HOME: Final = "00"
#: The next page of a list that does not fit one screen (persons, programmes).
MORE: Final = "98"


def ussd_language(language: str) -> str:
    """The language USSD screens are rendered in for a person's language (see the docstring)."""
    return language if language in SCREEN_LANGUAGES else "ur_Latn"


class Screen(enum.StrEnum):
    """Where a session stands; each screen is one row of `SCREENS`."""

    LANGUAGE = "language"
    MAIN = "main"
    ELIGIBILITY_CNIC = "eligibility_cnic"
    #: The person asked about their own CNIC: eligible, and in which programmes.
    PROGRAMMES = "programmes"
    #: Their programmes one per line, when a count stood for them on PROGRAMMES.
    PROGRAMME_LIST = "programme_list"
    #: Several people are registered to this phone: which one?
    PERSON = "person"
    #: Nobody is known for this phone: the CNIC to send a code for.
    VERIFY_CNIC = "verify_cnic"
    #: A code went by SMS to the registered mobile; waiting for it.
    VERIFY_CODE = "verify_code"
    CATEGORY = "category"
    CALLBACK = "callback"
    TRACK = "track"
    TICKET = "ticket"


class Task(enum.StrEnum):
    """What the person set out to do: where the person choice and verification lead."""

    PAY = "pay"
    COMPLAIN = "complain"
    MY_COMPLAINTS = "my_complaints"
    TICKET = "ticket"


class Expect(enum.StrEnum):
    """What a screen takes: one of its numbered choices, or a typed value."""

    CHOICE = "choice"
    CNIC = "cnic"
    CODE = "code"
    TICKET = "ticket"


# -- session state ----------------------------------------------------------------------------


@dataclass
class UssdState:
    """One USSD session: where it stands, what it gathered, and the last `text` seen."""

    session_id: str
    phone: str
    default_language: str
    #: The person's language (None until chosen or known); screens use `ussd_language` of it.
    language: str | None = None
    screen: Screen = Screen.MAIN
    #: Screens before this one, for `0`.
    history: list[Screen] = field(default_factory=list)
    task: Task | None = None
    data: dict[str, Any] = field(default_factory=dict)
    verified_cnic: str | None = None
    verified_until: float | None = None
    last_text: str = ""
    ended: bool = False
    touched_at: float = 0.0
    #: The language was chosen in this session: the edge remembers it on the contact.
    language_chosen: bool = False
    #: The edge's contact row for this phone, found at the session's first hit: later hits
    #: need no contact upsert (api/webhooks/ussd.py).
    contact_id: int | None = None

    @property
    def person_language(self) -> str:
        """The person's own language: for SMS codes and grievance updates."""
        return self.language or self.default_language

    @property
    def render_language(self) -> str:
        """The language this session's screens are written in."""
        return ussd_language(self.person_language)

    def is_verified_for(self, cnic: str, *, now: float) -> bool:
        return (
            self.verified_cnic == cnic
            and self.verified_until is not None
            and self.verified_until > now
        )

    @classmethod
    def from_stored(cls, data: dict[str, Any], *, phone: str) -> UssdState:
        """The state as stored; a field this version does not know is left out, so that a
        state written by a newer release (a rolling deploy) still reads. Raises ValueError,
        TypeError or KeyError for a state it cannot read (a screen it does not have)."""
        data = {name: value for name, value in data.items() if name in _STORED_FIELDS}
        data["screen"] = Screen(data["screen"])
        data["history"] = [Screen(s) for s in data.get("history", [])]
        data["task"] = Task(data["task"]) if data.get("task") else None
        return cls(phone=phone, **data)


#: What `UssdStore.save` stores of a state (the phone is kept as a keyed hash, `owner`).
_STORED_FIELDS = frozenset(f.name for f in fields(UssdState)) - {"phone"}


class UssdStore:
    """Session state as sealed JSON under `rabta:ussd:state:<sessionId>` (expiring with the
    session), and a longer-lived mark that the session was seen.

    The phone that dialled is not stored: the state holds a keyed hash of it (HMAC-SHA256 under
    the service's secret, 128 bits), enough to refuse the session id from another phone, and
    the gateway sends the phone again with every hit. The state is sealed (api/sealed.py): the
    path typed so far (`2*3520212345672`) and what the session gathered hold CNICs, and open
    only with the secret key, under the session's own key.
    """

    def __init__(self, redis: aioredis.Redis, *, secret: str) -> None:
        self._redis = redis
        self._secret = secret.encode()
        self._sealer = sealer_for(secret)

    @staticmethod
    def key(session_id: str) -> str:
        return f"rabta:ussd:state:{session_id}"

    @staticmethod
    def seen_key(session_id: str) -> str:
        return f"rabta:ussd:seen:{session_id}"

    def _owner(self, phone: str) -> str:
        return keyed_digest(self._secret, phone)

    async def load(self, session_id: str, phone: str) -> tuple[UssdState | None, bool, bool]:
        """The session's state (None when there is none, or it is another phone's or cannot be
        read), whether it was seen before (its seen-mark; True for a state that cannot go on, so
        that the hit is told the session ended), and whether it belongs to another phone than
        `phone`. A readable state with its mark gone (evicted) reports the mark missing, so
        that the next save sets it again."""
        key = self.key(session_id)
        raw, seen = await self._redis.mget(key, self.seen_key(session_id))
        if not raw:
            return None, bool(seen), False
        try:
            # Sealed under another secret key, altered, or kept in clear by a release before
            # sealing: unreadable, as below.
            data = self._sealer.unseal_object(raw, where=key)
            if data is None:
                raise ValueError("not sealed for this key")
            if data.pop("owner", None) != self._owner(phone):
                return None, True, True
            return UssdState.from_stored(data, phone=phone), bool(seen), False
        except (ValueError, TypeError, KeyError, AttributeError):
            # Unreadable (a release that renamed a screen): the session cannot go on, and the
            # caller is told it ended, as for one that expired.
            log.warning("ussd session state unreadable: the session is ended")
            return None, True, False

    async def save(self, state: UssdState, *, seen: bool = False) -> None:
        """Store the session's state; and its seen-mark unless the hit found one (`seen`): set
        at a session's first save, the mark outlives any session (an hour against minutes)."""
        data = asdict(state)
        data["owner"] = self._owner(data.pop("phone"))
        key = self.key(state.session_id)
        stored = self._sealer.seal(json.dumps(data, ensure_ascii=False), where=key)
        if seen:
            await self._redis.set(key, stored, ex=SESSION_SECONDS)
            return
        # One round trip, not a MULTI/EXEC transaction (which cost 7 % of a hit's CPU in
        # redis-py): the two keys need not change together. A state saved without its mark
        # (Redis dying between the two) still answers its session; the mark only tells, after
        # the state expired, "expired" from "new".
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(key, stored, ex=SESSION_SECONDS)
            pipe.set(self.seen_key(state.session_id), "1", ex=SEEN_SECONDS)
            await pipe.execute()


# -- reading the text path --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plan:
    """What one hit asks for: start afresh, then answer these inputs; or say it expired."""

    text: str
    inputs: tuple[str, ...] = ()
    fresh: bool = False
    expired: bool = False


def plan(state: UssdState | None, *, seen: bool, text: str) -> Plan:
    """The new input(s) in `text`, given what the session saw before (see the docstring)."""
    if state is None:
        if seen and text:
            return Plan(text=text, expired=True)
        return Plan(text=text, fresh=True, inputs=tuple(text.split("*")) if text else ())
    if state.ended:
        return Plan(text=text, expired=True)
    if not text:
        return Plan(text=text, fresh=True)  # dialled again under the same id: start over
    previous = state.last_text
    if text == previous:
        return Plan(text=text)  # nothing new: show the screen again
    if not previous:
        return Plan(text=text, inputs=(text,))
    if text.startswith(previous + "*"):
        return Plan(text=text, inputs=(text[len(previous) + 1 :],))
    # The gateway's path no longer extends ours (it rewrote it): its last step is the input.
    return Plan(text=text, inputs=(text.rsplit("*", 1)[-1],))


# -- the machine ------------------------------------------------------------------------------


@dataclass
class Ctx:
    """One hit being answered."""

    state: UssdState
    services: Services
    policy: Policy
    renderer: Renderer
    now: float
    #: A complaint filed on this hit (the edge also sends its number by SMS), and how its screen
    #: and that SMS name whose it is (`who.named`).
    filed: GrievanceOut | None = None
    filed_for: str = ""


Answer = Callable[[Ctx, str], Awaitable[list[Reply]]]


@dataclass(frozen=True, slots=True)
class Choice:
    """One numbered line of a menu: the key typed, its label template, and what it does."""

    key: str
    label: str
    then: Answer
    value: str = ""
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScreenSpec:
    """A row of the screen table."""

    prompt: str
    expects: Expect
    #: CHOICE screens: their numbered lines.
    choices: Callable[[Ctx], Sequence[Choice]] | None = None
    #: Typed-value screens: what to do with a value that parsed.
    answer: Answer | None = None
    #: The title when the input could not be used (it replaces the prompt).
    invalid: str = "ussd/error/choice"
    context: Callable[[Ctx], Mapping[str, Any]] = lambda ctx: {}


@dataclass(frozen=True, slots=True)
class Outcome:
    """The screen to send and what the hit did."""

    body: str
    end: bool
    language: str
    filed: GrievanceOut | None = None
    #: Whose complaint `filed` is, masked as answers name a person.
    filed_for: str = ""


async def handle(
    state: UssdState,
    hit: Plan,
    services: Services,
    *,
    policy: Policy,
    renderer: Renderer,
    now: float,
) -> Outcome:
    """Answer one hit; `state` is updated in place for the caller to save."""
    ctx = Ctx(state=state, services=services, policy=policy, renderer=renderer, now=now)
    if hit.expired:
        replies = end(ctx, "ussd/expired")
    else:
        replies = start(ctx) if hit.fresh else show(ctx)
        for raw in hit.inputs:
            replies = await answer(ctx, raw)
            if state.ended:
                break  # an END screen closes the session: later steps have nowhere to go
    state.last_text = hit.text
    state.touched_at = now
    body = render_screen(renderer, replies, language=state.render_language)
    return Outcome(
        body=body,
        end=state.ended,
        language=state.render_language,
        filed=ctx.filed,
        filed_for=ctx.filed_for,
    )


def start(ctx: Ctx) -> list[Reply]:
    """The first screen: the language menu unless the language is known, else the main menu."""
    state = ctx.state
    state.screen = Screen.MAIN if state.language else Screen.LANGUAGE
    state.history, state.task, state.data, state.ended = [], None, {}, False
    return show(ctx)


async def answer(ctx: Ctx, raw: str) -> list[Reply]:
    """One input on the current screen."""
    text = normalise_text(raw)
    # A key typed with the keypad's `#` or `*` beside it, as dial codes end (`1#`, `00#`), is
    # that key; inside a typed value the parsers drop them (a CNIC `35202*1234567*1#`).
    key = text.strip("#*").strip()
    if key == BACK:
        return back(ctx)
    if key == HOME:
        return home(ctx)
    spec = SCREENS[ctx.state.screen]
    if spec.expects is Expect.CHOICE:
        assert spec.choices is not None
        for choice in spec.choices(ctx):
            if choice.key == key:
                return await choice.then(ctx, choice.value)
        if ctx.state.screen is Screen.PERSON and (digits := parse_cnic(text)) in _persons(ctx):
            # The CNIC itself typed instead of its number, as SMS takes it: that choice (on any
            # page). One not on the list is a wrong number like any other, told nothing.
            return await choose_person(ctx, str(digits))
        if takes_a_cnic(ctx.state) and (digits := parse_cnic(text)):
            # A CNIC typed on the first menu, as people send one to 8171: its eligibility.
            ctx.state.history.append(ctx.state.screen)
            ctx.state.screen = Screen.ELIGIBILITY_CNIC
            return await check_eligibility(ctx, digits)
        return again(ctx, spec.invalid)
    value = PARSERS[spec.expects](text)
    if value is None:
        return again(ctx, spec.invalid)
    assert spec.answer is not None
    return await spec.answer(ctx, value)


def takes_a_cnic(state: UssdState) -> bool:
    """True on the menus where a CNIC typed instead of a key is looked up, as if typed on the
    eligibility screen: the main menu, and the language menu when it is the session's first
    screen (a phone that never chose a language, dialling `*262*<CNIC>#` or typing the CNIC
    there), which then answers in the default language, as SMS answers a bare CNIC."""
    if state.screen is Screen.MAIN:
        return True
    return state.screen is Screen.LANGUAGE and not state.history


# -- moving between screens ---------------------------------------------------------------------


def show(ctx: Ctx, *, title: str | None = None, **extra: Any) -> list[Reply]:
    """The current screen; `title` (an error) replaces its prompt."""
    spec = SCREENS[ctx.state.screen]
    choices = spec.choices(ctx) if spec.choices else ()
    options = [Option(reply=c.key, label=c.label, context=c.context) for c in choices]
    options += navigation(ctx.state)
    context = {**spec.context(ctx), **extra}
    return [Reply(title or spec.prompt, context, options=options)]


def navigation(state: UssdState) -> list[Option]:
    """`0 Back`, and `00 Main menu` when back is not already the main menu."""
    if state.screen is Screen.MAIN or not state.history:
        return []  # the main menu, or the first screen: 0 and 00 still work, unadvertised
    if state.history[-1] is Screen.MAIN:
        return [Option(reply=BACK, label="ussd/label/back")]
    return [
        Option(reply=BACK, label="ussd/label/back"),
        Option(reply=HOME, label="ussd/label/home"),
    ]


def go(ctx: Ctx, target: Screen) -> list[Reply]:
    """Move forward to `target`, remembering where we were for `0`."""
    ctx.state.history.append(ctx.state.screen)
    ctx.state.screen = target
    return show(ctx)


def home(ctx: Ctx) -> list[Reply]:
    """The main menu, forgetting the task in progress."""
    state = ctx.state
    state.screen, state.history, state.task, state.data = Screen.MAIN, [], None, {}
    return show(ctx)


def back(ctx: Ctx) -> list[Reply]:
    """One screen back (the main menu and the first screen stay where they are)."""
    state = ctx.state
    if not state.history:
        return show(ctx)
    previous = state.history.pop()
    if previous is Screen.MAIN:
        return home(ctx)
    state.screen = previous
    return show(ctx)


def again(ctx: Ctx, title: str, **extra: Any) -> list[Reply]:
    """The same screen, titled with what was wrong with the input."""
    return show(ctx, title=title, **extra)


def end(ctx: Ctx, template: str, context: Mapping[str, Any] | None = None) -> list[Reply]:
    """A last screen: the session is over."""
    ctx.state.ended = True
    return [Reply(template, dict(context or {}), end=True)]


# -- input parsers ------------------------------------------------------------------------------

# `*` and `#` are what a keypad offers between groups of digits; spaces, dashes and dots are
# handled by the CNIC and ticket parsers themselves.
_KEYPAD_SEPARATORS = re.compile(r"[*#]+")
_CODE_SEPARATORS = re.compile(r"[\s*#.\-]+")


def parse_cnic(text: str) -> str | None:
    """13 CNIC digits, typed any way a keypad allows, or None."""
    return cnic_digits(_KEYPAD_SEPARATORS.sub("", text))


def parse_code(text: str) -> str | None:
    """Six ASCII digits, or None."""
    digits = _CODE_SEPARATORS.sub("", text)
    return digits if len(digits) == 6 and digits.isascii() and digits.isdigit() else None


def parse_ticket(text: str) -> str | None:
    """A ticket id whose check symbol holds (`G7K3M9Q`, `7k3m9q`, `G-7K3M9Q`), or None."""
    return normalise_ticket_id(_KEYPAD_SEPARATORS.sub("", text))


PARSERS: dict[Expect, Callable[[str], str | None]] = {
    Expect.CNIC: parse_cnic,
    Expect.CODE: parse_code,
    Expect.TICKET: parse_ticket,
}


# -- what the screens do --------------------------------------------------------------------------


async def choose_language(ctx: Ctx, code: str) -> list[Reply]:
    ctx.state.language = code
    ctx.state.language_chosen = True
    return home(ctx)


async def to_screen(ctx: Ctx, target: str) -> list[Reply]:
    return go(ctx, Screen(target))


async def check_eligibility(ctx: Ctx, digits: str) -> list[Reply]:
    """The coarse status anyone may learn (SPEC §3), as 8171 answers it; to the person
    themself, eligible, also their programmes (SPEC §5.1), as SMS tells them."""
    refused = await _refused(ctx, digits)
    if refused:
        return refused
    result = await ctx.services.eligibility(Cnic(digits))
    verified = ctx.state.is_verified_for(result.cnic, now=ctx.now)
    if result.status is EligibilityStatus.ELIGIBLE and asked_by_the_person(
        result, verified=verified, phone=ctx.state.phone
    ):
        programmes = await enrolled_in(ctx.services, digits)
        if programmes:
            return _programmes_screen(ctx, digits, programmes)
    template = (
        "ussd/eligible"
        if result.status is EligibilityStatus.ELIGIBLE
        else f"eligibility/{result.status.value}"
    )
    return end(ctx, template, {"cnic": result.cnic_masked})


def _programmes_screen(ctx: Ctx, digits: str, programmes: Sequence[ProgrammeState]) -> list[Reply]:
    """The person's programmes by name on one screen with `1 My payment`; when their names do
    not fit beside it (many programmes, long names), how many they are, and `2` lists them."""
    ctx.state.data = {
        "cnic": digits,
        "programmes": [[p.programme, p.status] for p in programmes],
        "listed": True,
    }
    replies = go(ctx, Screen.PROGRAMMES)
    if _fits(ctx, replies):
        return replies
    ctx.state.data["listed"] = False
    return show(ctx)


async def _programme_list(ctx: Ctx, _: str) -> list[Reply]:
    ctx.state.history.append(ctx.state.screen)
    ctx.state.screen = Screen.PROGRAMME_LIST
    return _programme_page(ctx, 0)


async def _more_programmes(ctx: Ctx, _: str) -> list[Reply]:
    data = ctx.state.data
    after = int(data.get("first", 0)) + int(data.get("shown", 1))
    return _programme_page(ctx, after if after < len(data.get("programmes", [])) else 0)


def _programme_page(ctx: Ctx, first: int) -> list[Reply]:
    """The list from the `first` programme on, as many as fit one screen (one at least), with
    `98 More` while some are left out; `98` on the last page comes round to the first."""
    data = ctx.state.data
    data["first"] = first
    for shown in range(len(data.get("programmes", [])) - first, 0, -1):
        data["shown"] = shown
        replies = show(ctx)
        if shown == 1 or _fits(ctx, replies):
            return replies
    return show(ctx)


def _fits(ctx: Ctx, replies: Sequence[Reply]) -> bool:
    return fits(_body(ctx.renderer, replies, ctx.state.render_language))


async def my_payment(ctx: Ctx, _: str) -> list[Reply]:
    """`1 My payment` under the person's programmes: their schedule, without asking who."""
    cnic = str(ctx.state.data.get("cnic", ""))
    if not cnic or not await _may_see(ctx, cnic):
        return await begin_task(ctx, Task.PAY)  # the registry changed since: ask as MAIN does
    ctx.state.task = Task.PAY
    refused = await _refused(ctx, None)
    if refused:
        return refused
    return await proceed(ctx, cnic)


async def begin_task(ctx: Ctx, task: str) -> list[Reply]:
    """Payments and complaints are for the verified person: find out who that is."""
    ctx.state.task = Task(task)
    ctx.state.data = {}
    refused = await _refused(ctx, None)
    if refused:
        return refused
    known = await ctx.services.cnics_for_phone(ctx.state.phone)
    verified = ctx.state.verified_cnic
    if verified and ctx.state.is_verified_for(verified, now=ctx.now) and verified not in known:
        known.append(verified)  # proved by a code earlier (a helper's phone)
    if len(known) == 1:
        return await proceed(ctx, known[0])
    if known:
        ctx.state.data["cnics"] = known
        return go(ctx, Screen.PERSON)
    return go(ctx, Screen.VERIFY_CNIC)


async def choose_person(ctx: Ctx, digits: str) -> list[Reply]:
    return await proceed(ctx, digits)


async def verify_cnic(ctx: Ctx, digits: str) -> list[Reply]:
    """A CNIC typed on an unregistered phone: its data once its registered mobile proves it."""
    if await _may_see(ctx, digits):
        return await proceed(ctx, digits)
    return await _send_code(ctx, digits)


async def enter_code(ctx: Ctx, code: str) -> list[Reply]:
    try:
        checked = await ctx.services.check_code(str(ctx.state.data.get("request_id", "")), code)
    except OtpUnavailable:
        return end(ctx, "errors/try_later")
    if checked.outcome is CheckOutcome.WRONG:
        return again(ctx, "ussd/error/wrong_code", tries_left=checked.tries_left)
    if checked.outcome is CheckOutcome.EXHAUSTED:
        return end(ctx, "ussd/exhausted")
    if checked.outcome is not CheckOutcome.VERIFIED or checked.cnic is None:
        return end(ctx, "ussd/code_expired")
    return await proceed(ctx, checked.cnic)


async def choose_category(ctx: Ctx, category: str) -> list[Reply]:
    ctx.state.data["category"] = category
    return go(ctx, Screen.CALLBACK)


async def file_complaint(ctx: Ctx, callback: str) -> list[Reply]:
    """File the complaint: USSD has no free text, so the category (and a call back) is all."""
    data = ctx.state.data
    category = Category(str(data["category"]))
    wants_call = callback == "yes"
    # Without a call back the grievance still needs words: the category, in the person's own
    # language, is what they told us.
    description = (
        ""
        if wants_call
        else ctx.renderer.render_text(
            "grievance/category_name",
            {"category": category.value},
            language=ctx.state.person_language,
            channel=CHANNEL,
        )
    )
    filed = await ctx.services.file_grievance(
        str(data["cnic"]),
        category=category,
        description=description,
        language=ctx.state.person_language,
        callback_requested=wants_call,
    )
    ctx.filed = filed
    ctx.filed_for = await named(ctx.services, ctx.state.phone, str(data["cnic"]))
    template = "ussd/filed_callback" if wants_call else "ussd/filed"
    return end(
        ctx,
        template,
        {"ticket": filed.ticket_id, "cnic": ctx.filed_for, "due": filed.due_at.date()},
    )


async def enter_ticket(ctx: Ctx, ticket: str) -> list[Reply]:
    """A complaint number: its status for its verified owner (a code to the owner otherwise)."""
    refused = await _refused(ctx, None)
    if refused:
        return refused
    owner = await ctx.services.grievance_owner(ticket)
    if owner is None:
        return again(ctx, "ussd/error/no_ticket")
    ctx.state.data["ticket"] = ticket
    if await _may_see(ctx, owner):
        return await proceed(ctx, owner)
    return await _send_code(ctx, owner)


async def proceed(ctx: Ctx, digits: str) -> list[Reply]:
    """The person is known and may see their data: do what they came for."""
    _verify(ctx, digits)  # the phone or a code proved it; the edge keeps it on the contact
    task = ctx.state.task
    if task is Task.COMPLAIN:
        ctx.state.data["cnic"] = digits
        return go(ctx, Screen.CATEGORY)
    if task is Task.MY_COMPLAINTS:
        return await _my_complaints(ctx, digits)
    if task is Task.TICKET:
        return await _status(ctx, digits, str(ctx.state.data.get("ticket", "")))
    return await _schedule(ctx, digits)


async def _schedule(ctx: Ctx, digits: str) -> list[Reply]:
    result = await ctx.services.payment_schedule(digits)
    name = await named(ctx.services, ctx.state.phone, digits)
    if result.next is None:
        return end(ctx, "payments/none", {"cnic": name})
    return end(ctx, "ussd/schedule", {"cnic": name, "next": result.next})


async def _my_complaints(ctx: Ctx, digits: str) -> list[Reply]:
    grievances = await ctx.services.grievances_for_owner(digits)
    name = await named(ctx.services, ctx.state.phone, digits)
    if not grievances:
        return end(ctx, "ussd/no_complaints", {"cnic": name})
    return end(
        ctx, "ussd/list", {"cnic": name, "grievances": grievances[:2], "total": len(grievances)}
    )


async def _status(ctx: Ctx, digits: str, ticket: str) -> list[Reply]:
    grievance = await ctx.services.grievance_for_owner(digits, ticket)
    if grievance is None:
        return end(ctx, "grievance/not_found", {"ticket": ticket})
    name = await named(ctx.services, ctx.state.phone, digits)
    return end(ctx, "grievance/status", {"grievance": grievance, "cnic": name})


async def _send_code(ctx: Ctx, digits: str) -> list[Reply]:
    cnic = Cnic(digits)
    sent = await ctx.services.send_code(cnic, language=ctx.state.person_language)
    if sent.status is CodeStatus.SENT:
        # Also when this phone's code for the CNIC is still live (the session timed out and
        # they dialled again): the same code is asked for, within the time it has left.
        ctx.state.data.update(
            cnic=digits,
            request_id=sent.request_id,
            mobile=sent.mobile_masked or "",
            minutes=sent.minutes_left(ctx.policy.code_minutes),
        )
        return go(ctx, Screen.VERIFY_CODE)
    if sent.status is CodeStatus.COOLDOWN:
        return end(ctx, "ussd/wait", {"seconds": max(1, sent.retry_after), "cnic": cnic.masked})
    if sent.status is CodeStatus.TOO_MANY:
        return end(ctx, "verify/too_many", {"cnic": cnic.masked})
    if sent.status is CodeStatus.NO_MOBILE:
        return end(ctx, "verify/no_mobile", {"cnic": cnic.masked})
    if sent.status is CodeStatus.NOT_FOUND:
        return end(ctx, "eligibility/not_found", {"cnic": cnic.masked})
    return end(ctx, "errors/try_later")


async def _may_see(ctx: Ctx, digits: str) -> bool:
    """True when this session may see `digits`' private data (its phone, or a code, proves it)."""
    if ctx.state.is_verified_for(digits, now=ctx.now):
        return True
    return digits in await ctx.services.cnics_for_phone(ctx.state.phone)


def _verify(ctx: Ctx, digits: str) -> None:
    ctx.state.verified_cnic = digits
    ctx.state.verified_until = ctx.now + ctx.policy.verification_seconds


async def _refused(ctx: Ctx, cnic: str | None) -> list[Reply] | None:
    """A registry look-up counts against the sender's (and the CNIC's) limits (SPEC §4)."""
    verdict = await ctx.services.lookup_allowed(cnic)
    if verdict.allowed:
        return None
    # A USSD screen costs the person nothing, so unlike SMS every refusal says when to retry.
    told = limited(verdict, cnic)
    return end(ctx, told.template, told.context)


# -- the screen table -------------------------------------------------------------------------


def _language_choices(ctx: Ctx) -> list[Choice]:
    return [
        Choice(str(i), "language/name", choose_language, code, {"language_code": code})
        for i, code in enumerate(LANGUAGES, 1)
    ]


def _main_choices(ctx: Ctx) -> list[Choice]:
    return [
        Choice("1", "ussd/label/eligibility", to_screen, Screen.ELIGIBILITY_CNIC),
        Choice("2", "ussd/label/payment", begin_task, Task.PAY),
        Choice("3", "ussd/label/complaint", begin_task, Task.COMPLAIN),
        Choice("4", "ussd/label/track", to_screen, Screen.TRACK),
        Choice("5", "ussd/label/language", to_screen, Screen.LANGUAGE),
    ]


#: The most persons the "which CNIC?" screen lists at once, with its title, `0 Back 00 Menu`
#: and `98 More` in 182 characters; a phone with up to `PERSONS_ON_ONE_SCREEN` shows them all.
PERSONS_PER_PAGE: Final = 5
PERSONS_ON_ONE_SCREEN: Final = 6


def _persons(ctx: Ctx) -> list[str]:
    """The CNICs the "which CNIC?" screen chooses from, every page's."""
    return [str(c) for c in ctx.state.data.get("cnics", [])]


def _person_choices(ctx: Ctx) -> list[Choice]:
    """The persons of this phone, numbered; more than fit one screen go by pages of
    `PERSONS_PER_PAGE` behind `98 More`, which comes round to the first page after the last."""
    cnics = _persons(ctx)
    choices = [
        Choice(str(i), "verify/person_option", choose_person, c, {"cnic": masked})
        for i, (c, masked) in enumerate(zip(cnics, person_choice_masks(cnics), strict=True), 1)
    ]
    if len(choices) <= PERSONS_ON_ONE_SCREEN:
        return choices
    first = int(ctx.state.data.get("page", 0)) * PERSONS_PER_PAGE
    return [*choices[first : first + PERSONS_PER_PAGE], Choice(MORE, "ussd/label/more", _more)]


async def _more(ctx: Ctx, _: str) -> list[Reply]:
    pages = -(-len(ctx.state.data.get("cnics", [])) // PERSONS_PER_PAGE)
    ctx.state.data["page"] = (int(ctx.state.data.get("page", 0)) + 1) % pages
    return show(ctx)


def _category_choices(ctx: Ctx) -> list[Choice]:
    return [
        Choice(str(i), "grievance/category_name", choose_category, c.value, {"category": c.value})
        for i, c in enumerate(CATEGORIES, 1)
    ]


def _callback_choices(ctx: Ctx) -> list[Choice]:
    return [
        Choice("1", "ussd/label/yes", file_complaint, "yes"),
        Choice("2", "ussd/label/no", file_complaint, "no"),
    ]


async def _enter_ticket_screen(ctx: Ctx, _: str) -> list[Reply]:
    ctx.state.task = Task.TICKET
    return go(ctx, Screen.TICKET)


def _track_choices(ctx: Ctx) -> list[Choice]:
    return [
        Choice("1", "ussd/label/enter_ticket", _enter_ticket_screen),
        Choice("2", "ussd/label/my_complaints", begin_task, Task.MY_COMPLAINTS),
    ]


def _programme_choices(ctx: Ctx) -> list[Choice]:
    """`1 My payment` under the person's programmes; `2` lists them where a count stood for
    them, and the list goes on behind `98 More`."""
    data = ctx.state.data
    choices = [Choice("1", "ussd/label/payment", my_payment)]
    if ctx.state.screen is Screen.PROGRAMMES and not data.get("listed", True):
        choices.append(Choice("2", "ussd/label/programmes", _programme_list))
    shown = int(data.get("shown", 0))
    if ctx.state.screen is Screen.PROGRAMME_LIST and shown < len(data.get("programmes", [])):
        choices.append(Choice(MORE, "ussd/label/more", _more_programmes))
    return choices


def _programmes_context(ctx: Ctx) -> Mapping[str, Any]:
    data = ctx.state.data
    programmes = [ProgrammeState(str(p), str(s)) for p, s in data.get("programmes", [])]
    if ctx.state.screen is Screen.PROGRAMME_LIST:
        first = int(data.get("first", 0))
        programmes = programmes[first : first + int(data.get("shown", len(programmes)))]
    return {
        "cnic": mask_cnic(str(data.get("cnic", ""))),
        "programmes": programmes,
        "listed": bool(data.get("listed", True)),
    }


def _code_context(ctx: Ctx) -> Mapping[str, Any]:
    data = ctx.state.data
    return {
        "cnic": mask_cnic(str(data.get("cnic", ""))) if data.get("cnic") else "",
        "mobile": str(data.get("mobile", "")),
        "minutes": int(data.get("minutes") or ctx.policy.code_minutes),
    }


SCREENS: dict[Screen, ScreenSpec] = {
    # Any other input shows the menu again as it was: an error line would not fit beside six
    # names in their own scripts within 80 UCS-2 characters.
    Screen.LANGUAGE: ScreenSpec(
        "ussd/language", Expect.CHOICE, choices=_language_choices, invalid="ussd/language"
    ),
    Screen.MAIN: ScreenSpec("ussd/main", Expect.CHOICE, choices=_main_choices),
    Screen.ELIGIBILITY_CNIC: ScreenSpec(
        "ussd/ask_cnic", Expect.CNIC, answer=check_eligibility, invalid="ussd/error/not_cnic"
    ),
    # Any other input shows the answer again: an error title would take its place.
    Screen.PROGRAMMES: ScreenSpec(
        "ussd/programmes",
        Expect.CHOICE,
        choices=_programme_choices,
        invalid="ussd/programmes",
        context=_programmes_context,
    ),
    Screen.PROGRAMME_LIST: ScreenSpec(
        "ussd/programme_list",
        Expect.CHOICE,
        choices=_programme_choices,
        invalid="ussd/programme_list",
        context=_programmes_context,
    ),
    Screen.PERSON: ScreenSpec("ussd/choose_person", Expect.CHOICE, choices=_person_choices),
    Screen.VERIFY_CNIC: ScreenSpec(
        "ussd/verify_cnic", Expect.CNIC, answer=verify_cnic, invalid="ussd/error/not_cnic"
    ),
    Screen.VERIFY_CODE: ScreenSpec(
        "ussd/ask_code",
        Expect.CODE,
        answer=enter_code,
        invalid="ussd/error/not_code",
        context=_code_context,
    ),
    Screen.CATEGORY: ScreenSpec("ussd/category", Expect.CHOICE, choices=_category_choices),
    Screen.CALLBACK: ScreenSpec("ussd/callback", Expect.CHOICE, choices=_callback_choices),
    Screen.TRACK: ScreenSpec("ussd/track", Expect.CHOICE, choices=_track_choices),
    Screen.TICKET: ScreenSpec(
        "ussd/ask_ticket",
        Expect.TICKET,
        answer=enter_ticket,
        invalid="ussd/error/not_ticket",
    ),
}


# -- rendering within one screen --------------------------------------------------------------

#: Shorter forms of the answers that carry registry data, tried in turn until the screen fits:
#: the payment place without its mode, then the status without its reason; a grievance status
#: without its latest note.
COMPACT: dict[str, str] = {
    "ussd/schedule": "ussd/schedule_short",
    "ussd/schedule_short": "ussd/schedule_shortest",
    "grievance/status": "ussd/status_short",
}


def render_screen(renderer: Renderer, replies: Sequence[Reply], *, language: str) -> str:
    """The `CON …`/`END …` body, made to fit one screen: the compact forms first, then cut (and
    logged, since tests keep every template within budget). A screen stays in the session's
    language: a Roman Urdu reader who gets one screen in English mid-session may not read it,
    while a place name cut short, ending in `..`, still says where to go and that it goes on."""
    current = list(replies)
    body = _body(renderer, current, language)
    while not fits(body):
        compact = [_compact(r) for r in current]
        if compact == current:
            break
        current = compact
        body = _body(renderer, current, language)
    if fits(body):
        return body
    log.warning("ussd screen %s too long in %s: cut", _names(current), language)
    return cut(body)


def _body(renderer: Renderer, replies: Sequence[Reply], language: str) -> str:
    rendered = renderer.render(replies, language=language, channel=CHANNEL)
    return screen(rendered.text, end=rendered.end)


def _compact(reply: Reply) -> Reply:
    shorter = COMPACT.get(reply.template)
    if shorter is None:
        return reply
    return Reply(shorter, reply.context, options=reply.options, end=reply.end)


def _names(replies: Sequence[Reply]) -> str:
    return ",".join(r.template for r in replies)


def cut(body: str) -> str:
    """`body` shortened to one screen, ending in `..`."""
    limit = SCREEN_GSM7 if measure(body).encoding == "GSM-7" else SCREEN_UCS2
    text = body
    while text and measure(text + "..").units > limit:
        text = text[:-1]
    return text + ".."
