"""Eligibility by CNIC: the coarse answer anyone may have, as 8171 gives it, and to the person
themself also their programmes and their state (SPEC §5.1).

<CNIC> ──► valid? ──no──► errors/not_cnic
             └─yes─► services.eligibility ──► eligibility/<status>
                          └─ eligible, and asked by the person (verified, or from their
                             registered mobile) ──► eligibility/eligible with their programmes
"am I eligible" (no CNIC) ─┬─ person known (as a bare PAY) ──► that person's CNIC, as above
                           ├─ phone shared ─► CHOOSE_PERSON ─ n ─► <CNIC>
                           └─ unknown ──────────────────────────► help/menu ("send your CNIC")
"""

from __future__ import annotations

from api.eligibility.schemas import EligibilityResult, EligibilityStatus, ProgrammeState
from api.identity import Cnic, InvalidCnic
from bot.channels.base import Reply
from bot.dialogue.flows import help, who
from bot.dialogue.turn import Turn
from bot.ports import Services


async def check(turn: Turn) -> list[Reply]:
    """Answer the coarse status of the CNIC in the message, naming it masked; asked in words
    without one ("kya main ahal hoon"), of the person asking."""
    if not turn.command.argument:
        return await mine(turn)
    try:
        cnic = Cnic.parse(turn.command.argument)
    except InvalidCnic:
        return [Reply("errors/not_cnic")]
    return await answer(turn, cnic)


async def mine(turn: Turn) -> list[Reply]:
    """ "Am I eligible?" without a CNIC: from a registered mobile (or a verified conversation)
    the person's own answer, as a bare PAY gives their payment; a shared phone chooses whose;
    anyone else gets the menu, which starts "Send your CNIC to check eligibility"."""
    turn.conversation.reset()
    cnic, cnics = await who.known_person(turn)
    if cnic is not None:
        return await answer(turn, cnic)
    if cnics:
        return who.choose_person(turn, cnics)
    return await help.menu(turn)


async def answer(turn: Turn, cnic: Cnic) -> list[Reply]:
    """The status of `cnic`, and the person's programmes when they are the one asking."""
    result = await turn.services.eligibility(cnic)
    turn.conversation.reset()
    context: dict[str, object] = {"cnic": result.cnic_masked}
    verified = turn.conversation.is_verified_for(result.cnic, now=turn.now)
    if result.status is EligibilityStatus.ELIGIBLE and asked_by_the_person(
        result, verified=verified, phone=turn.phone
    ):
        context["programmes"] = await enrolled_in(turn.services, cnic.digits)
    return [Reply(f"eligibility/{result.status.value}", context)]


def asked_by_the_person(result: EligibilityResult, *, verified: bool, phone: str | None) -> bool:
    """The conversation (or USSD session) is `verified` for the CNIC, or comes from its
    registered mobile `phone` (read with the coarse status: no look-up more for anyone else)."""
    return verified or (result.mobile is not None and result.mobile == phone)


async def enrolled_in(services: Services, digits: str) -> list[ProgrammeState]:
    """The programmes the person is in now, with their state: those left (exited) are not
    named. The status is known already: only the enrollments are read."""
    return [p for p in await services.programmes(digits) if p.status != "exited"]


async def not_a_cnic(turn: Turn) -> list[Reply]:
    """Digits that are not a CNIC: say so, with the shape of one."""
    return [Reply("errors/not_cnic")]
