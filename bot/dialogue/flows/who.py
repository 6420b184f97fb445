"""Who a request is about: the verified CNIC, the person the phone is registered to, or ask.

Shared by the flows that need a verified person (payments, grievances).
"""

from __future__ import annotations

from api.identity import Cnic
from bot.dialogue.turn import Turn


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
