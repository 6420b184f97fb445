"""Help: what can be done, on every channel (SPEC §5.4)."""

from __future__ import annotations

from bot.channels.base import Reply
from bot.dialogue import keywords
from bot.dialogue.turn import Turn


async def menu(turn: Turn) -> list[Reply]:
    """The full list of what Rabta does and how to ask for it."""
    turn.conversation.reset()
    return [Reply("help/menu")]


async def not_understood(turn: Turn) -> list[Reply]:
    """A short nudge: send a CNIC, or HELP. Thanks, "ok", "han" or a bare "?" with nothing
    asked get the menu instead: "not understood" would read as an error to someone thanking."""
    if keywords.is_pleasantry(turn.command.argument):
        return await menu(turn)
    return [Reply("help/not_understood")]
