"""The conversation engine: one inbound message in, replies as data out.

Each step of a conversation is a handler in `STEPS`; in `IDLE` the message's intent picks the
flow from `INTENTS`. A handler may move the conversation to another step or return None to
say "not mine", and the message is then handled afresh from `IDLE`.

    IDLE ──LANG──────────► CHOOSE_LANGUAGE ──choice──────────► IDLE
      ├──<CNIC>──────────► eligibility ──────────────────────► IDLE
      ├──PAY [CNIC]──────► payments ─┬──────────────────────► IDLE
      │                              ├─► CHOOSE_PERSON ─ n ─► payments
      │                              └─► AWAIT_CODE ─ code ─► payments
      ├──COMPLAINT───────► grievance: GRIEVANCE_CNIC? → CATEGORY → DESCRIPTION? → CONFIRM
      ├──TRACK <ticket>──► grievance status (AWAIT_CODE when the owner is not verified)
      ├──STOP / START────► notifications off / on
      ├──HELP / MENU─────► help
      ├──voice/photo/file► "I read text only: type it" (the step is kept)
      └──anything else───► not understood

At any step that asks a question, a language chosen (`LANG UR`; `LANG` or `زبان` and the
menu's number; a Telegram button) keeps the question: it is asked again in the new language,
the draft kept (`change_language`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from api.identity import cnic_digits, mask_cnic, normalise_text
from bot.channels.base import Inbound, Reply
from bot.dialogue import keywords
from bot.dialogue.flows import (
    eligibility,
    grievance,
    help,
    language,
    payments,
    subscription,
    verification,
    who,
)
from bot.dialogue.keywords import Intent
from bot.dialogue.state import Conversation, Step
from bot.dialogue.turn import Handler, Policy, Turn
from bot.i18n import guess_language, language_from_code
from bot.ports import LookupVerdict, Services

INTENTS: dict[Intent, Handler] = {
    Intent.CNIC: eligibility.check,
    Intent.NOT_CNIC: eligibility.not_a_cnic,
    Intent.CODE: eligibility.not_a_cnic,
    Intent.PAY: payments.pay,
    Intent.COMPLAINT: grievance.complaint,
    Intent.TRACK: grievance.track,
    Intent.STOP: subscription.stop,
    Intent.START: subscription.start,
    Intent.LANGUAGE: language.choose,
    Intent.HELP: help.menu,
    Intent.EMPTY: help.menu,
}


#: Intents that read the registry: each counts against the sender's and the CNIC's limits.
LOOKUPS = frozenset({Intent.CNIC, Intent.PAY, Intent.TRACK, Intent.COMPLAINT})


async def idle(turn: Turn) -> list[Reply]:
    intent = turn.command.intent
    if intent in LOOKUPS:
        digits = cnic_digits(turn.command.argument)
        verdict = await turn.services.lookup_allowed(digits)
        if not verdict.allowed:
            turn.conversation.reset()
            if not verdict.tell:
                return []  # told once this window; every further SMS would cost money
            return [limited(verdict, digits)]
    handler = INTENTS.get(intent, help.not_understood)
    return await handler(turn)


def limited(verdict: LookupVerdict, digits: str | None) -> Reply:
    """The "try again after …" of a refused look-up: the CNIC's limit names it, masked (no
    registry read: a refused look-up reads nothing of it)."""
    minutes = max(1, -(-verdict.retry_after // 60))
    cnic = mask_cnic(digits) if digits else None
    return Reply("errors/rate_limited", {"minutes": minutes, "scope": verdict.scope, "cnic": cnic})


StepHandler = Callable[[Turn], Awaitable[list[Reply] | None]]

STEPS: dict[Step, StepHandler] = {
    Step.IDLE: idle,
    Step.CHOOSE_LANGUAGE: language.answer_menu,
    Step.CHOOSE_PERSON: payments.answer_choice,
    Step.AWAIT_CODE: verification.enter_code,
    Step.GRIEVANCE_CNIC: grievance.answer_cnic,
    Step.GRIEVANCE_CATEGORY: grievance.answer_category,
    Step.GRIEVANCE_DESCRIPTION: grievance.answer_description,
    Step.GRIEVANCE_CONFIRM: grievance.answer_confirmation,
}


#: The question each step asks, asked again as it is (after a language change): the same
#: prompt the step showed, with the draft the conversation holds.
QUESTIONS: dict[Step, Handler] = {
    Step.CHOOSE_PERSON: who.person_question,
    Step.AWAIT_CODE: verification.code_question,
    Step.GRIEVANCE_CNIC: grievance.cnic_question,
    Step.GRIEVANCE_CATEGORY: grievance.category_question,
    Step.GRIEVANCE_DESCRIPTION: grievance.description_question,
    Step.GRIEVANCE_CONFIRM: grievance.confirmation_question,
}


async def answer(turn: Turn) -> list[Reply] | None:
    """The message as the answer to the step the conversation is at; a language chosen while
    a question waits for its answer keeps the question (`change_language`)."""
    conversation = turn.conversation
    command = turn.command
    if conversation.step is not Step.IDLE and (
        command.intent is Intent.LANGUAGE and turn.starts_afresh
    ):
        argument = command.argument
        return await change_language(turn, language_from_code(argument) if argument else None)
    if conversation.step is Step.CHOOSE_LANGUAGE and language.PAUSED in conversation.data:
        chosen = language.chosen_at_menu(turn)
        if chosen is not None:
            return await change_language(turn, chosen)
        # Not a language: the answer to the question the menu paused ("paise nahi mile" for
        # the description), or a new request, as it would have been without the menu.
        language.resume(conversation)
    return await STEPS[conversation.step](turn)


async def change_language(turn: Turn, chosen: str | None) -> list[Reply]:
    """A language chosen (or, `chosen` None, the menu asked for) while a question waits.

    The question stays: the answer confirms the new language and asks it again in it, the
    draft (a complaint's category and words, the person chosen, the code sent) kept, and a
    verified conversation stays verified. On SMS the confirmation is spare: the question alone
    is sent when both would go over its segment budget (`bot.render`)."""
    if chosen is None:
        return language.offer_menu(turn)
    conversation = turn.conversation
    language.resume(conversation)
    question = QUESTIONS.get(conversation.step)
    if question is None:
        return language.set_language(turn, chosen)
    language.remember(turn, chosen)
    return [Reply("language/changed", spare=True), *await question(turn)]


def text_only(conversation: Conversation) -> Reply:
    """The answer to a message with nothing to read: type your CNIC (or, when a question is
    waiting for its answer, type the answer)."""
    if conversation.step is Step.IDLE:
        return Reply("errors/text_only")
    return Reply("errors/text_only_answer")


@dataclass(frozen=True, slots=True)
class Outcome:
    replies: list[Reply]
    language: str
    intent: Intent


async def handle(
    inbound: Inbound,
    conversation: Conversation,
    services: Services,
    *,
    policy: Policy,
    now: float | None = None,
) -> Outcome:
    """Answer one message; `conversation` is updated in place for the caller to save."""
    text = normalise_text(inbound.text)
    command = keywords.parse(text)
    if command.intent is Intent.NUMBER and conversation.options:
        index = int(command.argument) - 1
        if 0 <= index < len(conversation.options):
            command = keywords.parse(conversation.options[index])

    detected = guess_language(text, conversation.guessed_language)
    if detected is not None:
        conversation.guessed_language = detected
    turn = Turn(
        inbound=inbound,
        conversation=conversation,
        command=command,
        services=services,
        policy=policy,
        now=time.time() if now is None else now,
        language=(
            conversation.language or conversation.guessed_language or policy.default_language
        ),
    )
    if inbound.contact_phone is not None:
        replies: list[Reply] | None = await verification.contact_shared(turn)
    elif inbound.media and (
        command.intent is Intent.EMPTY
        or (command.intent is Intent.UNKNOWN and conversation.step is Step.IDLE)
    ):
        # A voice note, photo or file with no caption (or, asked nothing, one whose caption is
        # no request: "my card"): say so, and keep the conversation where it was, so the typed
        # answer that follows is read as the answer to its question.
        replies = [text_only(conversation)]
        return Outcome(replies=replies, language=turn.language, intent=command.intent)
    else:
        replies = await answer(turn)
    if replies is None:
        conversation.reset()
        replies = await idle(turn)
    return Outcome(replies=replies, language=turn.language, intent=command.intent)
