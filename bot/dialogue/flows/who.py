"""Who a request is about: the verified CNIC, the person the phone is registered to, or ask.

Shared by the flows that need a verified person (payments, grievances).
"""

from __future__ import annotations

from api.identity import Cnic, InvalidCnic, mask_cnic
from bot.channels.base import Option, Reply
from bot.dialogue import keywords
from bot.dialogue.keywords import Intent
from bot.dialogue.state import Step
from bot.dialogue.turn import Turn
from bot.ports import Services


async def known_person(turn: Turn) -> tuple[Cnic | None, list[str]]:
    """The CNIC this conversation is verified for (verifying a phone registered to exactly one
    person on the way), else None and the CNICs registered to the phone (maybe several)."""
    conversation = turn.conversation
    if conversation.verified_cnic and conversation.is_verified_for(
        conversation.verified_cnic, now=turn.now
    ):
        return Cnic(conversation.verified_cnic), []
    phone = turn.phone
    cnics = await turn.services.cnics_for_phone(phone) if phone else []
    if len(cnics) == 1:
        turn.verify(cnics[0])
        return Cnic(cnics[0]), []
    return None, cnics


async def may_see(turn: Turn, cnic: Cnic) -> bool:
    """True when this conversation may see `cnic`'s private data (verifying by phone if it can)."""
    if turn.conversation.is_verified_for(cnic.digits, now=turn.now):
        return True
    phone = turn.phone
    if phone and cnic.digits in await turn.services.cnics_for_phone(phone):
        turn.verify(cnic.digits)
        return True
    return False


def person_choice_masks(cnics: list[str]) -> list[str]:
    """The CNICs of the "which CNIC?" menu as it shows them: `35202-***4567-1`.

    Household members share the phone and, often, the district digits and the gender digit, so
    the usual mask (`35202-*******-1`) can show two of them alike. The menu goes only to the
    phone registered to every person on it, which has proved to be each of them (SPEC §3), so it
    shows the last four digits of the serial, the part of the card a person tells from their
    family's, and more of it in the rare menu where four still leave two alike. Always 15
    characters, as the usual mask: the prompt's SMS budget is unchanged."""
    for shown in range(4, 8):
        masks = [f"{c[:5]}-{'*' * (7 - shown)}{c[12 - shown : 12]}-{c[12]}" for c in cnics]
        if len(set(masks)) == len(masks):
            break
    return masks


async def named(services: Services, phone: str | None, digits: str) -> str:
    """How an answer about the person `digits` names them: as the "which CNIC?" menu does when
    the phone is registered to them and to others, whose usual masks can read alike within a
    family (SPEC §3: every answer names its CNIC so that answers can be told apart), else with
    the usual mask."""
    return named_among(await services.cnics_for_phone(phone) if phone else [], digits)


def named_among(cnics: list[str], digits: str) -> str:
    """`named`, given the CNICs registered to the phone the answer goes to (the grievance
    update, pushed outside a conversation, reads them itself)."""
    if len(cnics) > 1 and digits in cnics:
        return person_choice_masks(cnics)[cnics.index(digits)]
    return mask_cnic(digits)


def choose_person(turn: Turn, cnics: list[str], *, command: str = "") -> list[Reply]:
    """Several people share this phone: offer their CNICs, partly masked, as numbered choices; a
    choice reads as `command` and the CNIC (the CNIC alone when there is no command)."""
    turn.conversation.step = Step.CHOOSE_PERSON
    turn.conversation.options = [f"{command} {cnic}".lstrip() for cnic in cnics]
    return choose_person_again(turn)


def typed_choice(turn: Turn, *, of: Intent) -> Cnic | None:
    """A CNIC typed out at the "which CNIC?" menu of `of` (`PAY`: its choices read `PAY <CNIC>`)
    instead of its number, that is one of the menu's choices, else None: a CNIC not on the menu
    is a question of its own, and so is one typed at the menu of "am I eligible?" (whose choices
    are bare CNICs, a question of their own already)."""
    if turn.command.intent is not Intent.CNIC:
        return None
    try:
        cnic = Cnic.parse(turn.command.argument)
    except InvalidCnic:
        return None
    listed = {
        choice.argument
        for reply in turn.conversation.options
        if (choice := keywords.parse(reply)).intent is of
    }
    return cnic if cnic.digits in listed else None


async def person_question(turn: Turn) -> list[Reply]:
    """CHOOSE_PERSON's question: which of the phone's CNICs."""
    return choose_person_again(turn)


def choose_person_again(turn: Turn) -> list[Reply]:
    """The same numbered choice of CNICs (after an answer that was none of them)."""
    replies = turn.conversation.options
    # Each choice ends with its CNIC: `PAY 3520212345671` or `3520212345671`.
    masked = person_choice_masks([reply.rsplit(maxsplit=1)[-1] for reply in replies])
    options = [
        Option(reply=reply, label="verify/person_option", context={"cnic": cnic})
        for reply, cnic in zip(replies, masked, strict=True)
    ]
    return [Reply("verify/choose_person", {"cnics": masked}, options=options)]
