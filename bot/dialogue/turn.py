"""One inbound message being answered: what the flows receive."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.channels.base import Inbound, Reply
from bot.dialogue.keywords import Command
from bot.dialogue.state import Conversation
from bot.ports import Services


@dataclass(frozen=True, slots=True)
class Policy:
    """The rules a deployment sets for conversations."""

    default_language: str
    #: How long a verification holds, in seconds.
    verification_seconds: int = 1800
    #: Minutes a one-time code stays valid (told to the person).
    code_minutes: int = 5


@dataclass
class Turn:
    inbound: Inbound
    conversation: Conversation
    command: Command
    services: Services
    policy: Policy
    #: The moment this message is handled (epoch seconds).
    now: float
    #: The language this turn is answered in (a flow that changes it updates the conversation).
    language: str

    @property
    def phone(self) -> str | None:
        """The person's proven phone: the channel's own, or the contact card they shared."""
        return self.inbound.phone or self.conversation.phone

    def verify(self, cnic: str) -> None:
        """Record that this conversation proved to be `cnic`, for a while."""
        self.conversation.verified_cnic = cnic
        self.conversation.verified_until = self.now + self.policy.verification_seconds


Handler = Callable[[Turn], Awaitable[list[Reply]]]
