"""Eligibility by CNIC: the coarse answer anyone may have, as 8171 gives it (SPEC §5.1).

<CNIC> ──► valid? ──no──► errors/not_cnic
             └─yes─► services.eligibility ──► eligibility/<status>
"""

from __future__ import annotations

from api.identity import Cnic, InvalidCnic
from bot.channels.base import Reply
from bot.dialogue.turn import Turn


async def check(turn: Turn) -> list[Reply]:
    """Answer the coarse status of the CNIC in the message, naming it masked."""
    try:
        cnic = Cnic.parse(turn.command.argument)
    except InvalidCnic:
        return [Reply("errors/not_cnic")]
    result = await turn.services.eligibility(cnic)
    turn.conversation.reset()
    return [Reply(f"eligibility/{result.status.value}", {"cnic": result.cnic_masked})]


async def not_a_cnic(turn: Turn) -> list[Reply]:
    """Digits that are not a CNIC: say so, with the shape of one."""
    return [Reply("errors/not_cnic")]
