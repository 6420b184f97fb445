"""One inbound message being answered: what the flows receive."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from api.grievances.ticket import normalise_ticket_id
from api.identity import cnic_digits
from bot.channels.base import Inbound, Reply
from bot.dialogue.keywords import Command, Intent
from bot.dialogue.state import Conversation
from bot.i18n import language_from_code
from bot.ports import Services


@dataclass(frozen=True, slots=True)
class Policy:
    """The rules a deployment sets for conversations."""

    default_language: str
    #: How long a verification holds, in seconds.
    verification_seconds: int = 1800
    #: Minutes a one-time code stays valid (told to the person).
    code_minutes: int = 5


#: What a keyword takes after it when it is a request of its own, not the first word of a
#: sentence: `PAY 35202-1234567-1` is a request, "paise nahi mile" the person's own words.
_TAKES: dict[Intent, Callable[[str], bool]] = {
    Intent.PAY: lambda text: cnic_digits(text) is not None,
    Intent.TRACK: lambda text: normalise_ticket_id(text) is not None,
    Intent.LANGUAGE: lambda text: language_from_code(text) is not None,
}


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

    @property
    def starts_afresh(self) -> bool:
        """True when the message is a new request, not an answer to the menu a flow asked: a
        keyword alone (HELP, STOP, PAY…), a keyword with what it takes (`LANG EN`, `PAY <CNIC>`,
        `TRACK <ticket>`) or a CNIC. A keyword followed by words ("paise nahi mile") is someone
        answering in their own words, not choosing: the menu asks again."""
        command = self.command
        if command.intent is Intent.CNIC:
            return bool(command.argument)  # "kya main ahal hoon" has none: words, at a menu
        if not command.keyword:
            return False
        takes = _TAKES.get(command.intent)
        return not command.argument or (takes is not None and takes(command.argument))

    def verify(self, cnic: str) -> None:
        """Record that this conversation proved to be `cnic`, for a while."""
        self.conversation.verified_cnic = cnic
        self.conversation.verified_until = self.now + self.policy.verification_seconds


Handler = Callable[[Turn], Awaitable[list[Reply]]]
