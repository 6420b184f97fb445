"""The conversation's state between messages, kept in Redis with a per-channel expiry."""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import redis.asyncio as aioredis


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


class ConversationStore:
    """Loads and saves conversations as JSON under `rabta:conv:<channel>:<address>`."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    @staticmethod
    def key(channel: str, address: str) -> str:
        return f"rabta:conv:{channel}:{address}"

    async def load(self, channel: str, address: str) -> Conversation:
        raw = await self._redis.get(self.key(channel, address))
        if not raw:
            return Conversation(channel=channel, address=address)
        data = json.loads(raw)
        data["step"] = Step(data.get("step", Step.IDLE))
        return Conversation(**data)

    async def save(self, conversation: Conversation) -> None:
        payload = asdict(conversation)
        await self._redis.set(
            self.key(conversation.channel, conversation.address),
            json.dumps(payload, ensure_ascii=False),
            ex=EXPIRY_SECONDS.get(conversation.channel, 1800),
        )
