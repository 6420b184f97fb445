"""Grievances (SPEC §5.3): file one, follow it. Only the verified person files and sees them.

COMPLAINT [text] ─┬─ person known ──────────────────┐
                  ├─ phone shared ─► CHOOSE_PERSON ──┤
                  └─ unknown ─► GRIEVANCE_CNIC ─► code ─► (verified) ┤
                                                                  ▼
    GRIEVANCE_CATEGORY ─ 1..6 ─► (text given? ─no─► GRIEVANCE_DESCRIPTION) ─► GRIEVANCE_CONFIRM
                                                                  ─ 1 ─► filed (ticket id)
                                                                  ─ 2 ─► cancelled
TRACK <ticket> ─┬─ owner verified ─► status
                ├─ not a ticket / not found ─► grievance/not_found
                └─ else: code to the owner's registered mobile ─► status
TRACK ─► the verified person's grievances

At a numbered menu (person, category, confirmation) an answer that is none of its options asks
again; only a new request (`Turn.starts_afresh`: HELP, STOP, LANG EN, PAY <CNIC>…) leaves.
"""

from __future__ import annotations

import secrets
import unicodedata

from api.grievances.schemas import MAX_DESCRIPTION, Category, clean_text
from api.grievances.ticket import normalise_ticket_id
from api.identity import Cnic, InvalidCnic
from bot.channels.base import Option, Reply
from bot.dialogue import keywords
from bot.dialogue.flows import verification, who
from bot.dialogue.keywords import Intent
from bot.dialogue.state import Step
from bot.dialogue.turn import Turn
from bot.formatting import is_rtl
from bot.segments import GSM7_BASIC, GSM7_EXTENSION, cut_to_units, measure

#: The key under which a complaint's draft keeps its own key (`ask_confirmation`).
DRAFT = "draft"

#: The category menu, in the order people see it.
CATEGORIES: tuple[Category, ...] = (
    Category.PAYMENT_NOT_RECEIVED,
    Category.DEDUCTION_BY_AGENT,
    Category.BIOMETRIC_FAILURE,
    Category.ELIGIBILITY_DISPUTE,
    Category.DATA_CORRECTION,
    Category.OTHER,
)
#: Typographic quotes and dashes, to the GSM-7 characters they stand for.
_TYPOGRAPHIC = str.maketrans(
    {
        **dict.fromkeys("‘’‚‛′", "'"),
        **dict.fromkeys("“”„‟″«»", '"'),
        **dict.fromkeys("‐‑‒–—―−", "-"),
    }
)
_GSM7 = GSM7_BASIC | GSM7_EXTENSION
#: Fewest letters or digits a description worth filing has ("no money" is enough; "x" is not).
MIN_DESCRIPTION = 3


async def complaint(turn: Turn) -> list[Reply]:
    """`COMPLAINT` or `COMPLAINT <text>`: start filing for the verified person."""
    conversation = turn.conversation
    conversation.reset()
    text = clean_text(turn.command.argument)[:MAX_DESCRIPTION]
    if keywords.is_small_talk(text):
        text = ""  # "shikayat darj karni hai": the complaint's words are still to come
    cnic, cnics = await who.known_person(turn)
    if cnic is not None:
        return ask_category(turn, cnic, text)
    conversation.data = {"description": text}
    if cnics:
        conversation.data["then"] = "complaint"
        return who.choose_person(turn, cnics)
    conversation.step = Step.GRIEVANCE_CNIC
    return await cnic_question(turn)


async def cnic_question(turn: Turn) -> list[Reply]:
    """GRIEVANCE_CNIC's question: the CNIC the complaint is about (or, on Telegram, the phone's
    contact card)."""
    return [Reply("grievance/ask_cnic", ask_contact=True)]


async def answer_person(turn: Turn) -> list[Reply] | None:
    """The CNIC chosen from the phone's list (a number became it), None for a new request;
    anything else (a number not on the list, words) asks again."""
    if turn.command.intent is Intent.CNIC and turn.command.argument:
        return await answer_cnic(turn)
    return None if turn.starts_afresh else who.choose_person_again(turn)


async def answer_cnic(turn: Turn) -> list[Reply] | None:
    """The CNIC the complaint is about (typed, or chosen from the phone's list)."""
    if turn.command.intent is not Intent.CNIC:
        return None
    try:
        cnic = Cnic.parse(turn.command.argument)
    except InvalidCnic:
        return [Reply("errors/not_cnic")]
    text = str(turn.conversation.data.get("description", ""))
    if await who.may_see(turn, cnic):
        return ask_category(turn, cnic, text)
    replies = await verification.start(turn, cnic, then="complaint")
    turn.conversation.data["description"] = text
    return replies


def ask_category(turn: Turn, cnic: Cnic, text: str) -> list[Reply]:
    """The category menu: numbered choices on every channel."""
    conversation = turn.conversation
    conversation.step = Step.GRIEVANCE_CATEGORY
    conversation.data = {"cnic": cnic.digits, "description": text}
    conversation.options = []  # the numbers are the answers themselves
    return _category_menu()


async def category_question(turn: Turn) -> list[Reply]:
    """GRIEVANCE_CATEGORY's question: the numbered categories."""
    return _category_menu()


def _category_menu() -> list[Reply]:
    options = [
        Option(reply=str(i), label="grievance/category_name", context={"category": c.value})
        for i, c in enumerate(CATEGORIES, 1)
    ]
    return [Reply("grievance/ask_category", options=options)]


async def description_question(turn: Turn) -> list[Reply]:
    """GRIEVANCE_DESCRIPTION's question: the complaint in a few words."""
    return [Reply("grievance/ask_description")]


async def answer_category(turn: Turn) -> list[Reply] | None:
    """The category's number, None for a new request; anything else asks again: someone
    describing the problem here ("paise nahi mile") keeps their complaint, and their words
    are its description when it has none yet (not asked for a second time)."""
    command = turn.command
    data = turn.conversation.data
    index = int(command.argument) - 1 if command.intent is Intent.NUMBER else -1
    if not 0 <= index < len(CATEGORIES):
        if turn.starts_afresh:
            return None
        words = complaint_words(turn)
        if (
            keywords.says_something(words)
            # "meri shikayat ka kya bana"
            and keywords.asked_in_words(clean_text(turn.inbound.text)) is not Intent.TRACK
            and not describes(str(data.get("description", "")))
        ):
            data["description"] = words
        return [Reply("grievance/ask_category_again")]
    data["category"] = CATEGORIES[index].value
    if describes(str(data.get("description", ""))):
        return ask_confirmation(turn)
    turn.conversation.step = Step.GRIEVANCE_DESCRIPTION
    return await description_question(turn)


async def answer_description(turn: Turn) -> list[Reply] | None:
    """Whatever the person writes is the description (without a complaint keyword first:
    `complaint_words`); only a new request leaves the complaint, as at its other questions: a
    keyword alone (HELP, STOP…) or with what it takes (`LANG EN`, `PAY <CNIC>`, `TRACK
    <ticket>`). "paise nahi mile" starts with a keyword but is a description; so is a CNIC among
    the words (or alone), which this question is not asking."""
    command = turn.command
    if command.keyword and turn.starts_afresh:
        return None
    text = complaint_words(turn)
    if not describes(text):
        return await description_question(turn)
    turn.conversation.data["description"] = text
    return ask_confirmation(turn)


def complaint_words(turn: Turn) -> str:
    """The message as the complaint's words: the person's own text, cleaned, without a complaint
    keyword it starts with (`SHIKAYAT paise nahi mile`, `شکایت، پیسے نہیں ملے`), as the first
    message `SHIKAYAT <words>` is read (`complaint`): nothing when what follows the keyword only
    asks to complain ("SHIKAYAT darj karni hai"). A keyword inside the words stays."""
    text = clean_text(turn.inbound.text)
    if turn.command.intent is Intent.COMPLAINT and turn.command.keyword:
        _, *rest = text.split(maxsplit=1)
        text = clean_text(rest[0]) if rest else ""
        if keywords.is_small_talk(text):
            return ""
    return text[:MAX_DESCRIPTION]


def describes(text: str) -> bool:
    """True when `text` says something: at least MIN_DESCRIPTION letters or digits. Emoji and
    punctuation alone ("🙏🙏🙏", "...") describe nothing, and an agent could not act on them."""
    return sum(c.isalnum() for c in text) >= MIN_DESCRIPTION


async def confirmation_question(turn: Turn) -> list[Reply]:
    """GRIEVANCE_CONFIRM's question: the draft, its words shown as the turn's language shows
    them, to file or cancel."""
    return ask_confirmation(turn)


def ask_confirmation(turn: Turn) -> list[Reply]:
    conversation = turn.conversation
    conversation.step = Step.GRIEVANCE_CONFIRM
    data = conversation.data
    # The draft's own key, filed with it: should the conversation meet this confirmation again
    # after filing (its state left unsaved in Redis), a second "1" finds the grievance filed.
    data.setdefault(DRAFT, secrets.token_hex(16))
    return [
        Reply(
            "grievance/confirm",
            {
                "category": data["category"],
                "description": _preview(str(data["description"]), turn.language),
            },
            options=[
                Option(reply="1", label="grievance/confirm_yes"),
                Option(reply="2", label="grievance/confirm_no"),
            ],
        )
    ]


async def answer_confirmation(turn: Turn) -> list[Reply] | None:
    """1 (or a yes: "han", "ji", "ہاں") files, 2 (or a no: "nahi", "نہیں") cancels, a new
    request leaves (None); anything else asks again."""
    command = turn.command
    if command.intent is Intent.NUMBER and command.argument in ("1", "2"):
        files = command.argument == "1"
    elif (
        command.intent is Intent.UNKNOWN
        and (answer := keywords.yes_or_no(command.argument)) is not None
    ):
        files = answer
    else:
        return None if turn.starts_afresh else [Reply("grievance/confirm_again")]
    data = dict(turn.conversation.data)
    turn.conversation.reset()
    if not files:
        return [Reply("grievance/cancelled")]
    draft = data.get(DRAFT)
    filed = await turn.services.file_grievance(
        str(data["cnic"]),
        category=Category(str(data["category"])),
        description=str(data["description"]),
        language=turn.language,
        draft_key=draft if isinstance(draft, str) and draft else None,
    )
    name = await who.named(turn.services, turn.phone, str(data["cnic"]))
    return [
        Reply(
            "grievance/filed",
            {
                "ticket": filed.ticket_id,
                "cnic": name,
                "due": filed.due_at.date(),
                "category": filed.category.value,
            },
        )
    ]


async def track(turn: Turn) -> list[Reply]:
    """`TRACK <ticket>` (or `TRACK` for all of the verified person's)."""
    turn.conversation.reset()
    if not turn.command.argument:
        cnic, _ = await who.known_person(turn)
        if cnic is None:
            return [Reply("grievance/ask_ticket")]
        grievances = await turn.services.grievances_for_owner(cnic.digits)
        name = await who.named(turn.services, turn.phone, cnic.digits)
        if not grievances:
            return [Reply("grievance/none", {"cnic": name})]
        listed = {"cnic": name, "grievances": grievances[:3], "total": len(grievances)}
        return [Reply("grievance/list", listed)]
    ticket = normalise_ticket_id(turn.command.argument)
    owner = await turn.services.grievance_owner(ticket) if ticket else None
    if ticket is None or owner is None:
        return [Reply("grievance/not_found", {"ticket": _as_typed(turn.command.argument)})]
    cnic = Cnic(owner)
    if await who.may_see(turn, cnic):
        return await status(turn, cnic, ticket)
    replies = await verification.start(turn, cnic, then="track")
    turn.conversation.data["ticket"] = ticket
    return replies


def _as_typed(argument: str) -> str:
    """A complaint number that was not found, as its answer names it: what was typed, upper-cased,
    at most 12 characters; nothing (the answer says "that number") when it is not GSM-7 (Urdu
    words after TRACK, a backtick), which would make an English or Roman Urdu answer UCS-2, two
    segments for one (SPEC §2). A complaint number is GSM-7."""
    typed = argument.upper()[:12]
    return typed if measure(typed).encoding == "GSM-7" else ""


async def status(turn: Turn, cnic: Cnic, ticket: str) -> list[Reply]:
    """The complaint `ticket` of `cnic`, named by whose it is (SPEC §3: a helper's phone may
    track several people's)."""
    grievance = await turn.services.grievance_for_owner(cnic.digits, ticket)
    if grievance is None:
        return [Reply("grievance/not_found", {"ticket": ticket})]
    name = await who.named(turn.services, turn.phone, cnic.digits)
    return [Reply("grievance/status", {"grievance": grievance, "cnic": name})]


#: The most of a description the confirmation echoes, counted as an SMS counts it (septets,
#: two for a GSM-7 extension character such as `€`; or UTF-16 units, two for an emoji): the
#: confirmation's templates fit their segment budget with this much (bot/i18n_report.py).
PREVIEW_UNITS = 40


def _preview(text: str, language: str) -> str:
    """The description as the confirmation echoes it, at most `PREVIEW_UNITS` long.

    Phones type typographic quotes and dashes, and one of them turns a whole Latin-script SMS
    into UCS-2 (70 characters a segment instead of 160): the echo uses their GSM-7 forms (NFKC
    turns an ellipsis and non-breaking spaces into plain ones), and in English and Roman Urdu
    drops what still is not GSM-7 unless it is a letter or digit (an emoji). The description
    filed is the person's own text, untouched.
    """
    text = unicodedata.normalize("NFKC", text).translate(_TYPOGRAPHIC)
    if not is_rtl(language):
        text = "".join(c for c in text if c in _GSM7 or c.isalnum())
    return cut_to_units(" ".join(text.split()), PREVIEW_UNITS)
