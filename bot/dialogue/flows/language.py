"""Choosing a language (SPEC §2).

LANG UR ───────────────────────────────► changed (in the new language)
LANG ──► CHOOSE_LANGUAGE ──► 1..6 / UR ─► changed
                 └──────── anything else ─► handled as a fresh message

While a question waits for its answer (a complaint's category, "which CNIC?", a code), the
engine keeps it (`engine.change_language`): `LANG UR` asks it again in Urdu, and `LANG` shows
this menu with the question paused beside it (`pause`), to be asked again once a language is
chosen, or answered by whatever else comes instead (`resume`).
"""

from __future__ import annotations

from typing import Any

from bot.channels.base import Option, Reply
from bot.dialogue.state import Conversation, Step
from bot.dialogue.turn import Turn
from bot.i18n import LANGUAGE_KEYWORD, LANGUAGES, language_from_code

#: The key under which the menu keeps the question it interrupted: its step, options and data.
PAUSED = "paused"


def _menu() -> Reply:
    return Reply(
        "language/menu",
        options=[
            Option(
                reply=f"LANG {LANGUAGE_KEYWORD[code]}",
                label="language/name",
                context={"language_code": code},
            )
            for code in LANGUAGES
        ],
    )


async def choose(turn: Turn) -> list[Reply]:
    """`LANG XX` sets the language at once; a bare `LANG` offers the menu."""
    chosen = language_from_code(turn.command.argument) if turn.command.argument else None
    if chosen is None:
        return offer_menu(turn)
    return set_language(turn, chosen)


def offer_menu(turn: Turn) -> list[Reply]:
    """The numbered menu of languages; a question waiting for its answer is paused beside it."""
    conversation = turn.conversation
    if conversation.step is Step.IDLE:
        conversation.data = {}
    elif conversation.step is not Step.CHOOSE_LANGUAGE:
        conversation.data = {
            PAUSED: {
                "step": conversation.step.value,
                "options": conversation.options,
                "data": conversation.data,
            }
        }
    conversation.step = Step.CHOOSE_LANGUAGE
    menu = _menu()
    conversation.options = [o.reply for o in menu.options]
    return [menu]


def resume(conversation: Conversation) -> bool:
    """Put back the question the language menu paused; False when it paused none."""
    if conversation.step is not Step.CHOOSE_LANGUAGE:
        return False
    paused: Any = conversation.data.get(PAUSED)
    try:
        step = Step(paused["step"])
        options = [str(option) for option in paused["options"]]
        data = dict(paused["data"])
    except (TypeError, KeyError, ValueError):
        return False
    conversation.step, conversation.options, conversation.data = step, options, data
    return True


def remember(turn: Turn, language: str) -> None:
    """The person's choice, kept on the conversation (and so their contact); this turn is
    answered in it."""
    turn.conversation.language = language
    turn.language = language


def set_language(turn: Turn, language: str) -> list[Reply]:
    """Remember the choice; the confirmation is rendered in the new language."""
    remember(turn, language)
    turn.conversation.reset()
    return [Reply("language/changed")]


def chosen_at_menu(turn: Turn) -> str | None:
    """The language the answer to the menu names (its number became `LANG XX`; `UR`,
    `urdu`, `اردو` typed), or None."""
    return language_from_code(turn.command.argument or turn.inbound.text)


async def answer_menu(turn: Turn) -> list[Reply] | None:
    """The reply to the language menu, or None when the person moved on to something else."""
    chosen = chosen_at_menu(turn)
    if chosen is None:
        return None
    return set_language(turn, chosen)
