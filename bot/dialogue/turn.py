"""One inbound message being answered: what the flows receive."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.channels.base import Inbound, Reply
from bot.dialogue.keywords import Command
from bot.dialogue.state import Conversation
from bot.ports import Services


@dataclass
class Turn:
    inbound: Inbound
    conversation: Conversation
    command: Command
    services: Services
    #: The language this turn is answered in (a flow that changes it updates the conversation).
    language: str


Handler = Callable[[Turn], Awaitable[list[Reply]]]
