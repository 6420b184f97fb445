"""Payment schedule, for the verified person only (SPEC §3, §5.2).

PAY <CNIC> ─┬─ verified, or texting from its registered mobile ──────► payments/schedule
            ├─ not in the registry ──────────────────────────────────► eligibility/not_found
            └─ else: code to the registered mobile ─► AWAIT_CODE ─ right code ─► schedule
PAY ────────┬─ conversation verified ───────────────────────────────► schedule
            ├─ phone registered for one person ─────────────────────► schedule
            ├─ phone shared by several ─► CHOOSE_PERSON ─ 1..n ─────► PAY <CNIC>
            └─ phone unknown ───────────────────────────────────────► payments/ask_cnic
"""

from __future__ import annotations

from api.identity import Cnic, InvalidCnic
from bot.channels.base import Reply
from bot.dialogue.flows import verification, who
from bot.dialogue.keywords import Intent
from bot.dialogue.turn import Turn


async def pay(turn: Turn) -> list[Reply]:
    """`PAY` or `PAY <CNIC>`; words after the keyword without a digit ("paise nahi mile",
    "pay kab milega") ask what a bare `PAY` asks, rather than being read as a CNIC."""
    turn.conversation.reset()
    if any(c.isdigit() for c in turn.command.argument):
        try:
            cnic = Cnic.parse(turn.command.argument)
        except InvalidCnic:
            return [Reply("errors/not_cnic")]
        return await for_cnic(turn, cnic)
    conversation = turn.conversation
    if conversation.verified_cnic and conversation.is_verified_for(
        conversation.verified_cnic, now=turn.now
    ):
        return await schedule(turn, Cnic(conversation.verified_cnic))
    phone = turn.phone
    cnics = await turn.services.cnics_for_phone(phone) if phone else []
    if not cnics:
        return [Reply("payments/ask_cnic", ask_contact=True)]
    if len(cnics) == 1:
        turn.verify(cnics[0])
        return await schedule(turn, Cnic(cnics[0]))
    return who.choose_person(turn, cnics, command="PAY")


async def answer_choice(turn: Turn) -> list[Reply] | None:
    """The answer to CHOOSE_PERSON (a number became `PAY <CNIC>` or the CNIC a complaint is
    about; a CNIC of the list typed out is that choice too), None for a new request; anything
    else (a number not on the list) asks again."""
    if turn.conversation.data.get("then") == "complaint":
        from bot.dialogue.flows import grievance

        return await grievance.answer_person(turn)
    if turn.command.intent is Intent.PAY:
        return await pay(turn)
    chosen = who.typed_choice(turn, of=Intent.PAY)
    if chosen is not None:
        turn.conversation.reset()
        return await for_cnic(turn, chosen)
    return None if turn.starts_afresh else who.choose_person_again(turn)


async def for_cnic(turn: Turn, cnic: Cnic) -> list[Reply]:
    """The schedule when this conversation may see it, else start verification."""
    if turn.conversation.is_verified_for(cnic.digits, now=turn.now):
        return await schedule(turn, cnic)
    phone = turn.phone
    if phone and cnic.digits in await turn.services.cnics_for_phone(phone):
        turn.verify(cnic.digits)
        return await schedule(turn, cnic)
    return await verification.start(turn, cnic, then="pay")


async def schedule(turn: Turn, cnic: Cnic) -> list[Reply]:
    """The next tranche and the recent ones."""
    result = await turn.services.payment_schedule(cnic.digits)
    name = await who.named(turn.services, turn.phone, cnic.digits)
    if result.next is None:
        return [Reply("payments/none", {"cnic": name})]
    return [
        Reply(
            "payments/schedule",
            {"cnic": name, "next": result.next, "recent": list(result.recent)},
        )
    ]
