"""STOP and START: notifications (grievance updates) off and on again. Replies to the person's
own messages always go: they asked."""

from __future__ import annotations

from bot.channels.base import Reply
from bot.dialogue.turn import Turn


async def stop(turn: Turn) -> list[Reply]:
    turn.conversation.reset()
    turn.conversation.opted_out = True
    return [Reply("subscription/stopped")]


async def start(turn: Turn) -> list[Reply]:
    turn.conversation.reset()
    turn.conversation.opted_out = False
    return [Reply("subscription/started")]
