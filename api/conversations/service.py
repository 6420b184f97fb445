"""An inbound message's way through Rabta: dedup → contact → conversation → flow → reply.

Each provider message is answered once: its id is claimed in the same transaction that stores
the reply, so a replay (Twilio retries, a double-tap) gets the stored reply and changes nothing.
The question 8171 gets by the million, a CNIC sent in an idle conversation, changes nothing but
the look-up counters: it takes the look-up lane (`_look_up`), answered first and recorded with
its reply in one statement, with no transaction held around it.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from redis.exceptions import RedisError

from api import surge
from api.bot_services import Counted, LookupServices, RabtaServices
from api.conversations import people, repository
from api.db import utc
from api.hot import Executor
from api.metrics import MESSAGES, REPLAYS, SMS_SEGMENTS
from api.registry import repository as registry_repository
from api.runtime import Runtime
from bot.channels.base import Inbound, Rendered, Reply
from bot.dialogue import engine
from bot.dialogue.keywords import Intent
from bot.dialogue.state import Conversation
from bot.segments import measure

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Answer:
    """The reply to one inbound message; a replay carries only the stored text."""

    text: str
    language: str | None
    replayed: bool = False
    #: Served from the reply cache (api/surge.py): the same answer went to this sender within
    #: the cache's window.
    cached: bool = False
    #: For channels with buttons: (label, what pressing it sends).
    options: tuple[tuple[str, str], ...] = ()
    end: bool = False
    ask_contact: bool = False


@dataclass(slots=True)
class Attempt:
    """What a try at answering a message did, read by its caller however the try ended: a
    webhook that holds the message after a late or failed try (api/held.py)."""

    #: The look-up's limits were counted, and let it through (`Inbound.counted`).
    counted: bool = False


async def receive(runtime: Runtime, inbound: Inbound, attempt: Attempt | None = None) -> Answer:
    """Answer one inbound message, exactly once per provider message id; what the try did
    goes in `attempt`, as it goes."""
    # An anxious resend is answered from the reply cache (api/surge.py).
    found = await surge.lookup(runtime, inbound)
    if attempt is not None and found.counted is not None:
        attempt.counted = surge.counted_in_full(inbound, found.counted)
    if found.answer is not None:
        return Answer(text=found.answer.text, language=found.answer.language, cached=True)
    if (
        inbound.message_id
        and found.conversation is not None
        and found.subject is not None
        and found.subject.intent is Intent.CNIC
        and surge.is_idle(found.conversation)
    ):
        return await _look_up(runtime, inbound, inbound.message_id, found.conversation, found)
    async with runtime.db.transaction() as session:
        claim = None
        if inbound.message_id:
            claim = await repository.claim_inbound(
                session, channel=inbound.channel, external_id=inbound.message_id
            )
            if claim.replay:
                return _replayed(inbound, claim)
        turn = await _converse(runtime, inbound, found.conversation, session)
        if claim is not None:
            await repository.finish_inbound(
                session,
                claim,
                contact_id=turn.contact.id,
                reply=turn.text,
                intent=turn.outcome.intent.value,
                outcome=_eligibility_outcome(turn.outcome.replies),
                language=turn.outcome.language,
            )
    return await _answered(runtime, inbound, turn, found)


async def _look_up(
    runtime: Runtime,
    inbound: Inbound,
    message_id: str,
    conversation: Conversation,
    found: surge.Lookup,
) -> Answer:
    """The look-up lane: a CNIC sent in an idle conversation, answered first and recorded after.

    Its answer has no side effects but the Redis look-up counters, so it needs no transaction
    held open around it: each statement commits by itself (the contact with the registry read),
    and the message is recorded with its reply in one INSERT before the reply goes out, so no
    2xx is ever given for a message that is not stored. Both commit without waiting for the disk
    (api/hot.py): a crash of PostgreSQL itself may lose the last fraction of a second of such
    records, whose answers were given; nothing else. A provider retry of a message already
    answered meets that row and gets the stored reply; the one thing it repeats is counting the
    look-up. Two round trips to PostgreSQL instead of six (BEGIN, claim, contact, registry,
    reply, COMMIT): the registry is read with the contact's upsert, unless it is on a replica or
    the look-up's limits, counted ahead with the reply cache's read (`found.counted`), refused
    it; when they were not counted ahead the flow counts them after that read (a refused
    look-up has then read it for nothing, and tells nothing of it).
    """
    async with runtime.db.autocommit() as session:
        cnic = found.subject.cnic if found.subject is not None else None
        turn = await _converse(
            runtime, inbound, conversation, session, lookup_of=cnic, counted=found.counted
        )
        earlier = await repository.record_answered(
            session,
            channel=inbound.channel,
            external_id=message_id,
            contact_id=turn.contact.id,
            reply=turn.text,
            intent=turn.outcome.intent.value,
            outcome=_eligibility_outcome(turn.outcome.replies),
            language=turn.outcome.language,
        )
        if earlier is not None:
            return _replayed(inbound, earlier)
    return await _answered(runtime, inbound, turn, found)


def _replayed(inbound: Inbound, claim: repository.Claim) -> Answer:
    log.info("replayed %s message: answering with the stored reply", inbound.channel)
    REPLAYS.labels(inbound.channel).inc()
    return Answer(text=claim.reply or "", language=claim.language, replayed=True)


@dataclass(slots=True)
class _Turn:
    """One message's way through the conversation, before it is recorded and saved."""

    contact: repository.ContactRecord
    conversation: Conversation
    was_idle: bool
    outcome: engine.Outcome
    rendered: Rendered

    @property
    def text(self) -> str:
        return self.rendered.text


async def _converse(
    runtime: Runtime,
    inbound: Inbound,
    found: Conversation | None,
    session: Executor,
    *,
    lookup_of: str | None = None,
    counted: Counted | None = None,
) -> _Turn:
    """Contact → conversation → flow → reply, with the contact saved; not yet recorded.

    With `lookup_of` (a CNIC's digits), the turn is the look-up lane's: its services refuse to
    write, and the CNIC's household is read with the contact when the registry is here (and
    the look-up's limits, when `counted` ahead, let it through).
    """
    # One person across channels: a contact with no language takes the one its phone has
    # (the upsert does it when the channel proves the phone; below, for a Telegram contact
    # whose phone its own contact card proved).
    contact, services = await contact_and_services(
        runtime,
        session,
        channel=inbound.channel,
        address=inbound.sender,
        phone=inbound.phone,
        lookup=lookup_of is not None,
        lookup_of=lookup_of,
        counted=counted,
    )
    unread = False
    if found is None:
        found, unread = await _load_conversation(runtime, inbound)
    conversation = found
    was_idle = surge.is_idle(conversation)
    card_phone = inbound.contact_phone if inbound.contact_is_own else None
    known_phone = contact.phone or card_phone
    if contact.language is None and known_phone and known_phone != inbound.phone:
        contact.language = await people.language_for_phone(session, phone=known_phone)
    conversation.language = contact.language
    conversation.opted_out = contact.opted_out
    conversation.phone = contact.phone if inbound.phone is None else None
    if contact.verified_cnic and contact.verified_until:
        # The database is the record of a verification; Redis state may have expired.
        conversation.verified_cnic = contact.verified_cnic
        conversation.verified_until = utc(contact.verified_until).timestamp()
    outcome = await engine.handle(inbound, conversation, services, policy=runtime.policy)
    if unread and _needs_memory(conversation, outcome):
        outcome = _put_off(conversation, outcome)
    rendered = runtime.renderer.render(
        outcome.replies, language=outcome.language, channel=inbound.channel
    )
    chose_language = conversation.language != contact.language
    stopped_or_started = conversation.opted_out != contact.opted_out
    contact.language = conversation.language
    contact.opted_out = conversation.opted_out
    if conversation.phone and inbound.phone is None:
        contact.phone = conversation.phone  # a shared contact card proved it
    if chose_language and contact.language and contact.phone:
        # ... and a language chosen here follows the person to their other channels.
        await people.sync_language(session, phone=contact.phone, language=contact.language)
    if stopped_or_started and contact.phone:
        # So do STOP and START: the reply says "no more updates", not "no more SMS".
        await people.sync_opt_out(session, phone=contact.phone, opted_out=contact.opted_out)
    elif stopped_or_started:
        await people.record_opt_out(session, contact_id=contact.id, opted_out=contact.opted_out)
    if conversation.verified_cnic and conversation.verified_until:
        contact.verified_cnic = conversation.verified_cnic
        contact.verified_until = dt.datetime.fromtimestamp(conversation.verified_until, dt.UTC)
    await repository.save_contact(session, contact)
    return _Turn(contact, conversation, was_idle, outcome, rendered)


async def contact_and_services(
    runtime: Runtime,
    session: Executor,
    *,
    channel: str,
    address: str,
    phone: str | None,
    lookup: bool,
    lookup_of: str | None = None,
    counted: Counted | None = None,
    known: repository.ContactRecord | None = None,
) -> tuple[repository.ContactRecord, RabtaServices]:
    """The message's contact, and the services its flow calls.

    A look-up's (`lookup`) refuse to write, and when it looks up `lookup_of` (a CNIC's digits)
    and the registry is in this database, that household is read in the contact's statement
    and answers the flow's look-up, unless its limits, `counted` ahead, refused it (it would
    be read for nothing); anything else gets the full services. A contact already `known` (a
    USSD session's, found at its first hit) is taken as it is, with no upsert.
    """
    households: dict[str, registry_repository.Coarse | None] = {}
    refused = counted is not None and not all(d.allowed for d in counted[1])
    # The CNIC whose household is read ahead, with the contact's statement when there is one.
    ahead = lookup_of if lookup and runtime.db.registry_is_primary and not refused else None
    if known is not None:
        contact = known
        if ahead is not None:
            households[ahead] = await registry_repository.household_status(session, cnic=ahead)
    elif ahead is not None:
        contact, households[ahead] = await repository.get_or_create_contact_reading_household(
            session, channel=channel, address=address, phone=phone, cnic=ahead
        )
    else:
        contact = await repository.get_or_create_contact(
            session, channel=channel, address=address, phone=phone
        )
    if not lookup:
        return contact, RabtaServices(
            runtime, session, channel=channel, sender=address, contact_id=contact.id
        )
    return contact, LookupServices(
        runtime,
        session,
        channel=channel,
        sender=address,
        contact_id=contact.id,
        households=households,
        counted=counted,
    )


async def _answered(runtime: Runtime, inbound: Inbound, turn: _Turn, found: surge.Lookup) -> Answer:
    """Save the conversation (and cache the reply when it may be), count it, log it; `found` is
    what the reply cache's look-up said of the message."""
    outcome, text = turn.outcome, turn.text
    # Saves the conversation, and caches the reply for resends when it may be (one round trip).
    await surge.save(
        runtime,
        inbound,
        turn.conversation,
        was_idle=turn.was_idle,
        replies=outcome.replies,
        language=outcome.language,
        intent=outcome.intent.value,
        text=text,
        found=found,
    )
    MESSAGES.labels(inbound.channel, outcome.language, outcome.intent.value).inc()
    if inbound.channel == "sms":
        cost = measure(text)
        SMS_SEGMENTS.labels(cost.encoding).inc(cost.segments)
        log.info(
            "sms reply intent=%s lang=%s encoding=%s chars=%d segments=%d",
            outcome.intent.value,
            outcome.language,
            cost.encoding,
            cost.characters,
            cost.segments,
        )
    rendered = turn.rendered
    return Answer(
        text=text,
        language=outcome.language,
        options=tuple(rendered.options),
        end=rendered.end,
        ask_contact=rendered.ask_contact,
    )


def _eligibility_outcome(replies: list[Reply]) -> str | None:
    """The status an eligibility answer gave (`eligibility/<status>`), for the dashboard."""
    for reply in replies:
        if reply.template.startswith("eligibility/"):
            return reply.template.removeprefix("eligibility/")
    return None


async def _load_conversation(runtime: Runtime, inbound: Inbound) -> tuple[Conversation, bool]:
    """The sender's conversation, and True when Redis could not be read (a fresh one then)."""
    try:
        return await runtime.conversations.load(inbound.channel, inbound.sender), False
    except RedisError:
        # Redis down: answer from a fresh conversation rather than not at all.
        runtime.redis_away.happened(surge.RedisAway.CONVERSATION_UNREAD)
        log.info("conversation state unavailable (Redis); answering without it")
        return Conversation(channel=inbound.channel, address=inbound.sender), True


#: What a message may be that answers a question only its conversation knows: a menu number,
#: six digits (a code), free text (a complaint's description).
_ANSWERS = frozenset({Intent.NUMBER, Intent.CODE, Intent.UNKNOWN})


def _needs_memory(conversation: Conversation, outcome: engine.Outcome) -> bool:
    """With the conversation unread (Redis away): the reply asks a question whose answer
    could not be followed (the conversation is left in a flow), or the message may answer a
    question asked before, which this turn cannot know."""
    return not surge.is_idle(conversation) or outcome.intent in _ANSWERS


def _put_off(conversation: Conversation, outcome: engine.Outcome) -> engine.Outcome:
    """ "The service is busy, try again in a few minutes", as USSD says without its session:
    not a question Rabta cannot follow (a complaint's category, its confirmation, a choice of
    person), nor "we did not understand" to an answer of one, which would have the person
    loop, believing a complaint can be filed while Redis is away."""
    log.info("a flow step put off: its conversation cannot be read (Redis)")
    conversation.reset()
    return engine.Outcome([Reply("errors/try_later")], outcome.language, outcome.intent)
