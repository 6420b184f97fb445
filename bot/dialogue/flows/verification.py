"""Verification by one-time code (SPEC §3): the code goes to the registered mobile, whoever is
asking; the person (or the relative helping them) types it here.

    start ─► code sent ─► AWAIT_CODE ─┬─ right code ─► verified ─► the flow that asked
                                      ├─ wrong code ─► wrong (tries left), stay
                                      ├─ 5th wrong ──► exhausted ─► IDLE
                                      ├─ expired ────► expired ───► IDLE
                                      └─ keyword, CNIC, words ─► handled afresh

Any other digits are a wrong code, a mistyped one (5 digits) too.
"""

from __future__ import annotations

import re

from api.identity import Cnic, InvalidCnic
from api.otp.service import CheckOutcome, OtpUnavailable
from bot.channels.base import Reply
from bot.dialogue.flows import who
from bot.dialogue.keywords import Intent
from bot.dialogue.state import Step
from bot.dialogue.turn import Turn
from bot.ports import CodeStatus

_NOT_DIGIT = re.compile(r"[^0-9]")


async def start(turn: Turn, cnic: Cnic, *, then: str) -> list[Reply]:
    """Send a code to the mobile registered for `cnic`, and wait for it."""
    sent = await turn.services.send_code(cnic, language=turn.language)
    conversation = turn.conversation
    if sent.status is CodeStatus.SENT:
        conversation.step = Step.AWAIT_CODE
        # What the flow had gathered (a description, a ticket) waits with the code.
        conversation.data = {
            **conversation.data,
            "request_id": sent.request_id,
            "cnic": cnic.digits,
            "then": then,
        }
        return [
            Reply(
                "verify/code_sent",
                {
                    "cnic": cnic.masked,
                    "mobile": sent.mobile_masked,
                    # A resumed code (asked for again) has less time left than a new one.
                    "minutes": sent.minutes_left(turn.policy.code_minutes),
                },
                # On Telegram, sharing the registered phone's own contact card verifies too.
                ask_contact=True,
            )
        ]
    if sent.status is CodeStatus.COOLDOWN:
        return [Reply("verify/wait", {"seconds": sent.retry_after, "cnic": cnic.masked})]
    if sent.status is CodeStatus.TOO_MANY:
        return [Reply("verify/too_many", {"cnic": cnic.masked})]
    if sent.status is CodeStatus.NO_MOBILE:
        return [Reply("verify/no_mobile", {"cnic": cnic.masked})]
    if sent.status is CodeStatus.NOT_FOUND:
        return [Reply("eligibility/not_found", {"cnic": cnic.masked})]
    return [Reply("errors/try_later")]


async def code_question(turn: Turn) -> list[Reply]:
    """AWAIT_CODE's question, asked again: the code sent is asked for once more (no new code
    while it lives: `send_code` resumes it, with the time it has left), and what the flow had
    gathered waits with it, as when it was sent."""
    data = turn.conversation.data
    try:
        cnic = Cnic.parse(str(data.get("cnic", "")))
    except InvalidCnic:
        turn.conversation.reset()
        return [Reply("verify/expired")]
    return await start(turn, cnic, then=str(data.get("then", "")))


async def enter_code(turn: Turn) -> list[Reply] | None:
    """The code typed while AWAIT_CODE; a keyword, a CNIC or words without digits start
    afresh (None).

    Any other digits are a try at the code, a mistyped one too (`36691`): it is checked, so
    it counts as a wrong try, and the code stays pending for the right one sent next.
    """
    command = turn.command
    if command.keyword or command.intent is Intent.CNIC:
        return None
    digits = _NOT_DIGIT.sub("", command.argument)
    if not digits:
        return None
    conversation = turn.conversation
    request_id = str(conversation.data.get("request_id", ""))
    then = conversation.data.get("then")
    pending = dict(conversation.data)
    try:
        checked = await turn.services.check_code(request_id, digits)
    except OtpUnavailable:
        return [Reply("errors/try_later")]
    if checked.outcome is CheckOutcome.WRONG:
        return [Reply("verify/wrong", {"tries_left": checked.tries_left})]
    conversation.reset()
    if checked.outcome is CheckOutcome.EXHAUSTED:
        return [Reply("verify/exhausted")]
    if checked.outcome is CheckOutcome.EXPIRED or checked.cnic is None:
        return [Reply("verify/expired")]
    turn.verify(checked.cnic)
    return await _continue(turn, Cnic(checked.cnic), then, pending)


async def _continue(
    turn: Turn, cnic: Cnic, then: object, pending: dict[str, object]
) -> list[Reply]:
    # Imported here: those flows themselves start verification.
    from bot.dialogue.flows import grievance, payments

    if then == "pay":
        return await payments.schedule(turn, cnic)
    if then == "complaint":
        return grievance.ask_category(turn, cnic, str(pending.get("description", "")))
    if then == "track" and pending.get("ticket"):
        return await grievance.status(turn, cnic, str(pending["ticket"]))
    return [
        Reply("verify/verified", {"cnic": await who.named(turn.services, turn.phone, cnic.digits)})
    ]


async def contact_shared(turn: Turn) -> list[Reply]:
    """A contact card: the person's own number proves their phone (then the waiting request
    goes on); anyone else's proves nothing (SPEC §3)."""
    inbound = turn.inbound
    if not inbound.contact_is_own or not inbound.contact_phone:
        return [Reply("verify/contact_not_yours", ask_contact=True)]
    turn.conversation.phone = inbound.contact_phone
    pending = dict(turn.conversation.data)
    cnic = pending.get("cnic")
    if turn.conversation.step is Step.AWAIT_CODE and isinstance(cnic, str):
        if cnic in await turn.services.cnics_for_phone(inbound.contact_phone):
            turn.conversation.reset()
            turn.verify(cnic)
            return await _continue(turn, Cnic(cnic), pending.get("then"), pending)
    return [Reply("verify/contact_saved")]
