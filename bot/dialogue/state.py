"""The conversation's state between messages, kept in Redis with a per-channel expiry."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field, fields
from typing import Any

import redis.asyncio as aioredis

from api.identity import keyed_digest
from api.sealed import sealer_for


class Step(enum.StrEnum):
    """Where a conversation stands; each step is one handler in the engine's table."""

    IDLE = "idle"
    CHOOSE_LANGUAGE = "choose_language"
    #: Several people share this phone: which CNIC is the request about?
    CHOOSE_PERSON = "choose_person"
    #: A code went to the registered mobile; waiting for the person to type it.
    AWAIT_CODE = "await_code"
    #: Filing a grievance: the CNIC (when the phone proves no one), the category, the
    #: description, then a confirmation.
    GRIEVANCE_CNIC = "grievance_cnic"
    GRIEVANCE_CATEGORY = "grievance_category"
    GRIEVANCE_DESCRIPTION = "grievance_description"
    GRIEVANCE_CONFIRM = "grievance_confirm"


#: How long a half-finished conversation is remembered: a USSD session lives ~3 minutes, a chat
#: is picked up again within half an hour.
EXPIRY_SECONDS: dict[str, int] = {"ussd": 180, "sms": 1800, "whatsapp": 1800, "telegram": 1800}


@dataclass
class Conversation:
    """One person on one channel: their language and where the dialogue stands."""

    channel: str
    address: str
    #: The language the person chose (LANG …); remembered on their contact.
    language: str | None = None
    #: The language last guessed from their writing, used when a message has no letters.
    guessed_language: str | None = None
    step: Step = Step.IDLE
    #: Replies offered as numbered options on the last message (`1` → options[0]).
    options: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    #: The CNIC this conversation proved to be, and until when (epoch seconds).
    verified_cnic: str | None = None
    verified_until: float | None = None
    #: The person sent STOP: no notifications (replies to their own messages still go).
    opted_out: bool = False
    #: A phone this channel proved to be the person's (their own Telegram contact card).
    phone: str | None = None
    #: Read from the store: saving it blank must then delete what is there.
    stored: bool = field(default=False, compare=False, repr=False)

    @property
    def blank(self) -> bool:
        """Nothing to remember: idle, nothing pending, no language chosen or guessed, nothing
        verified, not opted out; what a conversation never stored (or expired) loads as."""
        return (
            self.step is Step.IDLE
            and not self.options
            and not self.data
            and self.language is None
            and self.guessed_language is None
            and self.verified_cnic is None
            and self.verified_until is None
            and not self.opted_out
        )

    def is_verified_for(self, cnic: str, *, now: float) -> bool:
        return (
            self.verified_cnic == cnic
            and self.verified_until is not None
            and self.verified_until > now
        )

    def reset(self) -> None:
        self.step = Step.IDLE
        self.options = []
        self.data = {}


#: Not stored: the caller passes the address, and the contact row holds the proven phone.
_NOT_STORED = ("channel", "address", "phone", "stored")
_STORED = tuple(f.name for f in fields(Conversation) if f.name not in _NOT_STORED)


class ConversationStore:
    """Loads and saves conversations under `rabta:conv:<channel>:<keyed hash>`, sealed.

    Redis never holds the address (a phone number, a Telegram id) in clear: the key is an
    HMAC-SHA256 of channel and address under the service's secret, truncated to 128 bits, and
    the stored JSON leaves out the address and a proven phone (the caller knows the first, and
    the contact in the database keeps the second). The JSON itself is sealed (api/sealed.py):
    what a flow asked for (a CNIC being filed for, a complaint's words), the CNIC the
    conversation is verified for and the numbered options (`PAY <CNIC>`) open only with the
    secret key, and only under their own key.

    A blank conversation is not stored at all (one that was is deleted): someone who only asks
    a question, the message 8171 gets by the million, leaves nothing in Redis but the look-up
    counters and the short reply cache, and their answer costs no write.
    """

    def __init__(self, redis: aioredis.Redis, *, secret: str) -> None:
        self._redis = redis
        self._secret = secret.encode()
        self._sealer = sealer_for(secret)

    def key(self, channel: str, address: str) -> str:
        return f"rabta:conv:{channel}:" + keyed_digest(self._secret, channel, address)

    def parse(
        self, channel: str, address: str, raw: bytes | str | None, *, key: str | None = None
    ) -> Conversation | None:
        """The conversation stored as `raw` under `key` (derived when not given): None when
        there is none.

        One that does not open or read (sealed under another secret key, altered, written in
        clear by a release before sealing, a step this release does not have) is taken as
        expired: a blank conversation, marked stored so that saving it blank deletes what is
        there. A field this version does not store is left out, so that a conversation written
        by a newer release (a rolling deploy) still reads."""
        if not raw:
            return None
        plain = self._sealer.unseal(raw, where=key or self.key(channel, address))
        try:
            if plain is None:
                raise ValueError("not sealed for this key")
            data = {name: value for name, value in json.loads(plain).items() if name in _STORED}
            data["step"] = Step(data.get("step", Step.IDLE))
            return Conversation(channel=channel, address=address, stored=True, **data)
        except (ValueError, TypeError, AttributeError):
            return Conversation(channel=channel, address=address, stored=True)

    async def load(self, channel: str, address: str) -> Conversation:
        key = self.key(channel, address)
        raw = await self._redis.get(key)
        found = self.parse(channel, address, raw, key=key)
        return found or Conversation(channel=channel, address=address)

    @staticmethod
    def nothing_to_send(conversation: Conversation) -> bool:
        """True when saving it sends nothing: blank, and never stored (or deleted already)."""
        return not conversation.stored and conversation.blank

    async def save(self, conversation: Conversation, *, client: Any = None) -> bool:
        """Store the conversation with its channel's expiry (a blank one: delete it if it was
        stored, else nothing). `client` may be a pipeline, which then sends the command with
        the rest of its own. False when there was nothing to send."""
        if self.nothing_to_send(conversation):
            return False
        blank = conversation.blank
        key = self.key(conversation.channel, conversation.address)
        target = client or self._redis
        if blank:
            command = target.delete(key)
        else:
            payload = {name: getattr(conversation, name) for name in _STORED}
            command = target.set(
                key,
                self._sealer.seal(json.dumps(payload, ensure_ascii=False), where=key),
                ex=EXPIRY_SECONDS.get(conversation.channel, 1800),
            )
        if client is None:
            await command
        conversation.stored = not blank
        return True
