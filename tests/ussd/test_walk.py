"""Every USSD menu path, generated from the screen table, in every language: each screen starts
with CON/END and fits one screen, with the longest data the registry can hold.

The walk is breadth-first over session states: from each state it tries every key the screen
offers, the typed values its `Expect` takes (valid ones of every outcome and invalid ones), the
navigation keys, and junk (empty, emoji, `*` inside, letters). Services are a fake that answers
with worst-case data (60-character places, the largest amounts, the longest reasons, categories
and statuses, long notes), so a template that could overflow does, here.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import logging
import re
from collections import deque
from collections.abc import Sequence
from typing import Any

import pytest

from api.eligibility.schemas import EligibilityResult, EligibilityStatus, ProgrammeState
from api.grievances.schemas import Category, EventOut, GrievanceOut, Status
from api.grievances.ticket import ticket_id_for
from api.identity import Cnic, mask_cnic
from api.otp.service import Checked, CheckOutcome
from api.payments.schemas import PaymentSchedule, Tranche
from api.programmes import get_programmes
from bot.channels.base import Rendered, Reply
from bot.channels.ussd import SCREEN_UCS2, fits
from bot.dialogue import ussd as menus
from bot.dialogue.turn import Policy
from bot.dialogue.ussd import SCREENS, Ctx, Expect, Plan, Screen, UssdState
from bot.i18n import LANGUAGES
from bot.ports import CodeSent, CodeStatus, LookupVerdict
from bot.render import Renderer
from bot.segments import measure

PLACE_60 = "Government Girls Higher Secondary School No. 2, Kot Addu Road"
NOTE_200 = "The retailer was visited by the tehsil team; " * 5

# CNICs whose answers differ (all valid; none need to exist anywhere).
MINE = "3520212345671"  # registered to PHONE_ONE
WIFE = "3520212345672"  # with MINE, registered to PHONE_SHARED
NOT_ELIGIBLE = "4210198765433"
UNDER_REVIEW = "1730155555552"
NOT_FOUND = "6110100000017"
NO_MOBILE = "6110100000025"
COOLDOWN = "6110100000033"
TOO_MANY = "6110100000041"
UNAVAILABLE = "6110100000058"
NO_PAYMENTS = "6110100000066"
OTHER = "3740512345675"  # registered elsewhere: a code goes to its mobile

PHONE_ONE = "+923001111111"
PHONE_SHARED = "+923002222222"
PHONE_UNKNOWN = "+923219876543"
PHONE_LIMITED = "+923334444444"  # over its look-up limit

REGISTERED = {
    PHONE_ONE: [MINE],
    PHONE_SHARED: [MINE, WIFE],
    PHONE_LIMITED: [MINE],
}
STATUSES = {
    NOT_ELIGIBLE: EligibilityStatus.NOT_ELIGIBLE,
    UNDER_REVIEW: EligibilityStatus.UNDER_REVIEW,
    NOT_FOUND: EligibilityStatus.NOT_FOUND,
}
SEND_CODE = {
    NOT_FOUND: CodeStatus.NOT_FOUND,
    NO_MOBILE: CodeStatus.NO_MOBILE,
    COOLDOWN: CodeStatus.COOLDOWN,
    TOO_MANY: CodeStatus.TOO_MANY,
    UNAVAILABLE: CodeStatus.UNAVAILABLE,
}
RIGHT, WRONG, SPENT, LAST_TRY = "123456", "111111", "000000", "999999"

#: The person's programmes: every configured one, in the state with the longest word (named on
#: one screen); more, with names as long as a programmes file may add (counted, then listed).
PROGRAMMES = {
    MINE: tuple(ProgrammeState(p, "pending") for p in ("taleemi_wazaif", "kafaalat", "nashonuma")),
    WIFE: tuple(
        ProgrammeState(p, s)
        for p, s in (
            ("taleemi_wazaif", "suspended"),
            ("kafaalat", "active"),
            ("nashonuma", "pending"),
            ("benazir_undergraduate_scholarship", "pending"),
            ("waseela_e_haq", "exited"),
            ("benazir_nashonuma_plus_programme", "suspended"),
        )
    ),
}

TICKET_MINE = ticket_id_for(1_000_001)
TICKET_OTHER = ticket_id_for(2_000_002)
TICKET_UNKNOWN = ticket_id_for(3_000_003)
OWNERS = {TICKET_MINE: MINE, TICKET_OTHER: OTHER}

#: Values tried on screens that take typed input, valid and not.
TYPED: dict[Expect, list[str]] = {
    Expect.CNIC: [
        MINE,
        WIFE,
        NOT_ELIGIBLE,
        UNDER_REVIEW,
        NOT_FOUND,
        NO_MOBILE,
        COOLDOWN,
        TOO_MANY,
        UNAVAILABLE,
        NO_PAYMENTS,
        OTHER,
        "35202*1234567*2",  # `*` typed between the groups
        "۳۵۲۰۲۱۲۳۴۵۶۷۲",  # Urdu digits
        "352021234567",  # twelve digits
        "9520212345671",  # no such province
    ],
    Expect.CODE: [RIGHT, WRONG, SPENT, LAST_TRY, "12345", "1234567"],
    Expect.TICKET: [
        TICKET_MINE,
        TICKET_MINE.lower().replace("-", ""),
        TICKET_OTHER,
        TICKET_UNKNOWN,
        "G-7K3M9R",  # a check symbol that does not hold
    ],
}
#: Tried on every screen.
ALWAYS = ["0", "00", "", "9", "abc", "😀🙏", "1*2", "*", "#", "1#", "۰۰", "x" * 300]


def grievance(ticket: str, category: Category, status: Status) -> GrievanceOut:
    at = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
    return GrievanceOut(
        ticket_id=ticket,
        category=category,
        status=status,
        created_at=at,
        due_at=at + dt.timedelta(days=30),
        events=[
            EventOut(at=at, action="filed", from_status=None, to_status="open", note=None),
            EventOut(at=at, action="note", from_status=None, to_status=None, note=NOTE_200),
        ],
        description="",
        updated_at=at,
    )


class WorstCaseServices:
    """`bot.ports.Services` answering with the longest data; the CNIC or code picks the path."""

    def __init__(self, phone: str) -> None:
        self.phone = phone
        self.filed: list[dict[str, Any]] = []

    async def lookup_allowed(self, cnic: str | None) -> LookupVerdict:
        if self.phone == PHONE_LIMITED:
            return LookupVerdict(allowed=False, retry_after=3599, tell=True)
        return LookupVerdict(allowed=True)

    async def eligibility(self, cnic: Cnic, *, full: bool = False) -> EligibilityResult:
        status = STATUSES.get(cnic.digits, EligibilityStatus.ELIGIBLE)
        # Asked from its registered mobile, the answer is the person's own: their programmes.
        mobile = self.phone if cnic.digits in REGISTERED.get(self.phone, []) else None
        return EligibilityResult(
            cnic=cnic.digits, cnic_masked=cnic.masked, status=status, mobile=mobile
        )

    async def programmes(self, cnic: str) -> tuple[ProgrammeState, ...]:
        return PROGRAMMES.get(cnic, ())

    async def cnics_for_phone(self, phone: str) -> list[str]:
        return list(REGISTERED.get(phone, []))

    async def send_code(self, cnic: Cnic, *, language: str) -> CodeSent:
        status = SEND_CODE.get(cnic.digits, CodeStatus.SENT)
        if status is CodeStatus.SENT:
            return CodeSent(status, request_id=f"req-{cnic.digits}", mobile_masked="+92300****567")
        return CodeSent(status, retry_after=59 if status is CodeStatus.COOLDOWN else 0)

    async def check_code(self, request_id: str, code: str) -> Checked:
        cnic = request_id.removeprefix("req-")
        if code == RIGHT:
            return Checked(CheckOutcome.VERIFIED, cnic=cnic)
        if code == SPENT:
            return Checked(CheckOutcome.EXPIRED)
        if code == LAST_TRY:
            return Checked(CheckOutcome.EXHAUSTED)
        return Checked(CheckOutcome.WRONG, tries_left=4)

    async def payment_schedule(self, cnic: str) -> PaymentSchedule:
        if cnic == NO_PAYMENTS:
            return PaymentSchedule(cnic_masked=mask_cnic(cnic), next=None)
        worst = Tranche(
            payment_id="PAY-1",
            programme="taleemi_wazaif",
            tranche="2026-Q4",
            amount_pkr=999_999,
            window_start=dt.date(2026, 9, 28),
            window_end=dt.date(2027, 1, 31),
            mode="retailer",
            place=PLACE_60,
            status="withheld",
            reason="biometric verification failed",
        )
        return PaymentSchedule(cnic_masked=mask_cnic(cnic), next=worst, recent=(worst,))

    async def file_grievance(
        self,
        cnic: str,
        *,
        category: Category,
        description: str,
        language: str,
        callback_requested: bool = False,
    ) -> GrievanceOut:
        self.filed.append({"cnic": cnic, "category": category, "callback": callback_requested})
        assert description or callback_requested, "a grievance without words or a call back"
        return grievance(TICKET_MINE, category, Status.OPEN)

    async def grievance_owner(self, ticket_id: str) -> str | None:
        return OWNERS.get(ticket_id)

    async def grievance_for_owner(self, cnic: str, ticket_id: str) -> GrievanceOut | None:
        if OWNERS.get(ticket_id) != cnic:
            return None
        return grievance(ticket_id, Category.DATA_CORRECTION, Status.REJECTED)

    async def grievances_for_owner(self, cnic: str) -> list[GrievanceOut]:
        if cnic == NO_PAYMENTS:
            return []
        return [
            grievance(TICKET_MINE, Category.DEDUCTION_BY_AGENT, Status.ESCALATED),
            grievance(TICKET_OTHER, Category.DATA_CORRECTION, Status.REJECTED),
            grievance(TICKET_UNKNOWN, Category.OTHER, Status.OPEN),
        ]


class RecordingRenderer(Renderer):
    """The real renderer, noting which templates each screen used."""

    def __init__(self) -> None:
        programmes = get_programmes()
        super().__init__(brand=programmes.brand, programme_name=programmes.name)
        self.used: set[str] = set()

    def render(self, replies: Sequence[Reply], *, language: str, channel: str) -> Rendered:
        self.used.update(r.template for r in replies)
        return super().render(replies, language=language, channel=channel)


POLICY = Policy(default_language="ur", verification_seconds=1800, code_minutes=5)
NOW = 1_800_000_000.0


def inputs_for(state: UssdState, services: WorstCaseServices, renderer: Renderer) -> list[str]:
    """What to type on this state's screen: its keys or typed values, then the usual junk."""
    spec = SCREENS[state.screen]
    if spec.expects is Expect.CHOICE:
        assert spec.choices is not None
        ctx = Ctx(state=state, services=services, policy=POLICY, renderer=renderer, now=NOW)
        keys = [c.key for c in spec.choices(ctx)]
        assert keys, f"{state.screen} offers nothing to choose"
        return [*keys, *ALWAYS]
    return [*TYPED[spec.expects], *ALWAYS]


def signature(state: UssdState) -> tuple[Any, ...]:
    """States that behave alike: the same screen, task and path back, the same kinds of things
    gathered, and verified or not (which CNIC, code or category matters to no screen's size:
    masked CNICs and ticket ids are all as long)."""
    return (
        state.screen,
        state.task,
        tuple(state.history),
        tuple(sorted(state.data)),
        state.data.get("cnic"),  # a code for a person with no payments or complaints
        state.verified_cnic is not None,
        state.language,
    )


#: Every CNIC the walk types or the fake registry holds, none of which a screen may show in full.
CNICS = {MINE, WIFE, OTHER, *STATUSES, *SEND_CODE, NO_PAYMENTS}
TICKET_ID = re.compile(r"G-[0-9A-Z]{6}")
MASKED_CNIC = re.compile(r"[0-9]{5}-\*{3,7}[0-9]{0,4}-[0-9]")


def check_screen(body: str, state: UssdState, where: str) -> None:
    assert body.startswith(("CON ", "END ")), where
    assert not any(cnic in body.replace("-", "") for cnic in CNICS), f"{where}: {body!r}"
    if TICKET_ID.search(body):
        # A complaint filed, tracked or listed: whose it is, masked (SPEC §3).
        assert MASKED_CNIC.search(body), f"{where}: {body!r}"
    assert fits(body), f"{where}: {measure(body)} {body!r}"
    assert body.startswith("END ") == state.ended, where
    if state.screen is not Screen.LANGUAGE or state.ended:
        # Only the language menu names languages in their own script (see bot.dialogue.ussd).
        assert measure(body).encoding == "GSM-7", f"{where}: {body!r}"


async def walk(phone: str, language: str | None) -> tuple[set[Screen], set[str], int]:
    """Breadth-first over every state reachable from dialling in; returns the screens seen,
    the templates used and the number of screens checked."""
    services = WorstCaseServices(phone)
    renderer = RecordingRenderer()
    first = UssdState(
        session_id="walk", phone=phone, default_language=POLICY.default_language, language=language
    )
    outcome = await menus.handle(
        first, Plan(text="", fresh=True), services, policy=POLICY, renderer=renderer, now=NOW
    )
    check_screen(outcome.body, first, "first screen")
    queue = deque([(first, "")])
    seen = {signature(first)}
    screens = {first.screen}
    checked = 1
    while queue:
        state, path = queue.popleft()
        for typed in inputs_for(state, services, renderer):
            after = copy.deepcopy(state)
            text = f"{path}*{typed}" if path else typed
            step = Plan(text=text, inputs=(typed,))
            outcome = await menus.handle(
                after, step, services, policy=POLICY, renderer=renderer, now=NOW
            )
            where = f"{language} {phone} [{text[:60]}] on {state.screen}"
            check_screen(outcome.body, after, where)
            checked += 1
            if after.ended:
                continue
            if after.language != language:
                continue  # a language chosen from the menu: that language has its own walk
            screens.add(after.screen)
            key = signature(after)
            if key not in seen:
                seen.add(key)
                queue.append((after, text))
    return screens, renderer.used, checked


#: Every last screen the machine can end on, and every error title.
EXPECTED_TEMPLATES = {
    "ussd/eligible",
    "ussd/programmes",
    "ussd/programme_list",
    "eligibility/not_eligible",
    "eligibility/under_review",
    "eligibility/not_found",
    "ussd/schedule",
    "ussd/schedule_short",
    "payments/none",
    "ussd/filed",
    "ussd/filed_callback",
    "ussd/list",
    "ussd/no_complaints",
    "grievance/status",
    "ussd/status_short",
    "ussd/wait",
    "verify/too_many",
    "verify/no_mobile",
    "errors/try_later",
    "ussd/exhausted",
    "ussd/code_expired",
    "ussd/error/choice",
    "ussd/error/not_cnic",
    "ussd/error/not_code",
    "ussd/error/wrong_code",
    "ussd/error/not_ticket",
    "ussd/error/no_ticket",
    *(spec.prompt for spec in SCREENS.values()),
}
#: Compact forms only English needs: a Roman Urdu status with its longest note fits one screen
#: (as Urdu, Sindhi, Pashto and Punjabi read it on USSD), an English one with the longest
#: status words does not.
ENGLISH_ONLY_TEMPLATES = {"ussd/status_short"}


@pytest.mark.parametrize("language", [None, *LANGUAGES], ids=lambda x: x or "unknown")
async def test_every_path_fits_in_every_language(language, caplog):
    caplog.set_level(logging.WARNING, logger="bot.dialogue.ussd")
    screens: set[Screen] = set()
    used: set[str] = set()
    total = 0
    for phone in (PHONE_ONE, PHONE_SHARED, PHONE_UNKNOWN):
        seen, templates, checked = await walk(phone, language)
        screens |= seen
        used |= templates
        total += checked
    assert screens == set(Screen), f"never reached: {set(Screen) - screens}"
    expected = EXPECTED_TEMPLATES - (set() if language == "en" else ENGLISH_ONLY_TEMPLATES)
    assert expected <= used, f"never shown: {expected - used}"
    # Every screen fitted as rendered or in its compact form: none fell back to English or was cut.
    assert not caplog.records, [r.getMessage() for r in caplog.records]
    assert total > 500


async def test_a_phone_over_its_limit_is_told_when_to_come_back():
    services = WorstCaseServices(PHONE_LIMITED)
    renderer = RecordingRenderer()
    state = UssdState(session_id="s", phone=PHONE_LIMITED, default_language="en", language="en")
    await menus.handle(
        state, Plan(text="", fresh=True), services, policy=POLICY, renderer=renderer, now=NOW
    )
    outcome = await menus.handle(
        state, Plan(text="2", inputs=("2",)), services, policy=POLICY, renderer=renderer, now=NOW
    )
    assert outcome.body.startswith("END Too many requests from this phone")
    assert "60 minutes" in outcome.body


@pytest.mark.parametrize("language", [None, *LANGUAGES], ids=lambda x: x or "unknown")
def test_the_language_menu_fits_the_ucs2_budget(language):
    """The one Arabic-script screen: six names in their own scripts, within ~80 UCS-2 units,
    both as the first screen and with `0 Back` from the main menu."""
    renderer = RecordingRenderer()
    state = UssdState(
        session_id="s",
        phone=PHONE_ONE,
        default_language="ur",
        language=language,
        screen=Screen.LANGUAGE,
    )
    services = WorstCaseServices(PHONE_ONE)
    for history in ([], [Screen.MAIN]):
        state.history = list(history)
        ctx = Ctx(state=state, services=services, policy=POLICY, renderer=renderer, now=NOW)
        body = menus.render_screen(renderer, menus.show(ctx), language=state.render_language)
        cost = measure(body)
        assert cost.encoding == "UCS-2" and cost.units <= SCREEN_UCS2, (cost, body)
        for name in ("English", "اردو", "Roman Urdu", "سنڌي", "پښتو", "پنجابی"):
            assert name in body


@pytest.mark.parametrize(
    ("language", "screen_language"),
    [
        ("en", "en"),
        ("ur_Latn", "ur_Latn"),
        ("ur", "ur_Latn"),
        ("sd", "ur_Latn"),
        ("ps", "ur_Latn"),
        ("pa_Arab", "ur_Latn"),
    ],
)
def test_arabic_script_languages_read_roman_urdu_on_ussd(language, screen_language):
    assert menus.ussd_language(language) == screen_language


def test_the_table_covers_every_screen():
    assert set(SCREENS) == set(Screen)
    for screen, spec in SCREENS.items():
        if spec.expects is Expect.CHOICE:
            assert spec.choices is not None, screen
        else:
            assert spec.answer is not None and spec.expects in menus.PARSERS, screen


async def test_long_answers_use_their_compact_forms_and_cut_only_as_a_last_resort(caplog):
    """A place, reason or note longer than any in the registry today still gives one screen."""
    renderer = RecordingRenderer()
    schedule = await WorstCaseServices(PHONE_ONE).payment_schedule(MINE)
    assert schedule.next is not None
    long_reason = dataclasses.replace(schedule.next, reason="r" * 60)
    body = menus.render_screen(
        renderer,
        [Reply("ussd/schedule", {"cnic": "35202-*******-1", "next": long_reason}, end=True)],
        language="en",
    )
    assert fits(body) and "ussd/schedule_shortest" in renderer.used and "r" * 60 not in body
    assert not caplog.records
    huge = dataclasses.replace(schedule.next, place="p" * 300)
    caplog.set_level(logging.WARNING, logger="bot.dialogue.ussd")
    body = menus.render_screen(
        renderer,
        [Reply("ussd/schedule", {"cnic": "35202-*******-1", "next": huge}, end=True)],
        language="ur_Latn",
    )
    assert body.startswith("END ") and fits(body) and body.endswith("..")
    assert any("cut" in r.getMessage() for r in caplog.records)


class CnicLimitedServices(WorstCaseServices):
    """Every CNIC is over its day's look-ups (from all phones); this phone is not."""

    async def lookup_allowed(self, cnic: str | None) -> LookupVerdict:
        if cnic is None:
            return LookupVerdict(allowed=True)
        return LookupVerdict(allowed=False, retry_after=5 * 3600, tell=True, scope="cnic")


async def test_a_cnic_over_its_limit_is_named_masked_when_told_to_come_back():
    """SPEC §3: the refusal names the CNIC it is about, so a helper asking about several knows
    which one to stop asking about; masked, and without reading the registry."""
    services = CnicLimitedServices(PHONE_UNKNOWN)
    renderer = RecordingRenderer()
    state = UssdState(session_id="s", phone=PHONE_UNKNOWN, default_language="en", language="en")
    await menus.handle(
        state, Plan(text="", fresh=True), services, policy=POLICY, renderer=renderer, now=NOW
    )
    cnic = "3520212345671"
    outcome = await menus.handle(
        state, Plan(text=cnic, inputs=(cnic,)), services, policy=POLICY, renderer=renderer, now=NOW
    )
    assert outcome.body == (
        "END CNIC 35202-*******-1 has been looked up too many times today. "
        "Please try again after 5 hours."
    )
