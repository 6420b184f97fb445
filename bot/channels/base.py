"""What every channel shares: the inbound message, the reply as data, and the Channel protocol."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message from a person, whatever channel carried it."""

    channel: str
    #: The channel's address of the sender: an E.164 phone on SMS/WhatsApp/USSD, a user id on
    #: Telegram.
    sender: str
    text: str
    #: The provider's id for this message (Twilio MessageSid, Telegram update_id), for dedup.
    message_id: str | None = None
    #: The sender's phone in E.164 when the channel itself proves it (SMS, WhatsApp, USSD).
    phone: str | None = None
    #: A phone number the person shared as a contact card (Telegram), and whether the card is
    #: their own (its user id is the sender's): only their own proves anything.
    contact_phone: str | None = None
    contact_is_own: bool = False
    #: The message carried something other than text (a voice note, photo, file, location,
    #: contact card, sticker). Rabta reads text only: with no text (no caption) the person is
    #: asked to type instead.
    media: bool = False
    #: A look-up's limits were counted for this message, and let it through, by a try at
    #: answering it that did not finish (late, or the database away): it was held, and its
    #: answer later does not count them again.
    counted: bool = False


@dataclass(frozen=True, slots=True)
class Option:
    """A choice offered to the user: the text to send back and the label's template."""

    reply: str
    label: str
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reply:
    """A message as data: a template name, its context and choices; rendered at the edge."""

    template: str
    context: Mapping[str, Any] = field(default_factory=dict)
    options: Sequence[Option] = ()
    #: The conversation ends with this reply (USSD `END`).
    end: bool = False
    #: Offer to share the phone number (Telegram's contact button) as a way to verify.
    ask_contact: bool = False
    #: Said only when it costs nothing more: an SMS answer leaves it out when with it the answer
    #: would be over the segment budget of its other replies (SPEC §2; `bot.render`).
    spare: bool = False


@dataclass(frozen=True, slots=True)
class Rendered:
    """Replies turned into the channel's words: the text, and for channels with buttons the
    (label, reply) pairs and whether to offer the contact button."""

    text: str
    options: Sequence[tuple[str, str]] = ()
    end: bool = False
    ask_contact: bool = False


class Channel(Protocol):
    """A channel knows how its replies look; parsing its wire format lives at the HTTP edge."""

    name: str
    #: Most characters one reply may have on this channel (a USSD screen), or None.
    max_chars: int | None

    def compose(self, texts: Sequence[str], options: Sequence[tuple[str, str]]) -> str:
        """Join rendered replies and options into the one message this channel sends."""
        ...
