"""Choosing a language (SPEC §2).

LANG UR ───────────────────────────────► changed (in the new language)
LANG ──► CHOOSE_LANGUAGE ──► 1..6 / UR ─► changed
                 └──────── anything else ─► handled as a fresh message
"""

from __future__ import annotations

from bot.channels.base import Option, Reply
from bot.dialogue.state import Step
from bot.dialogue.turn import Turn
from bot.i18n import LANGUAGE_KEYWORD, LANGUAGES, language_from_code


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
        turn.conversation.step = Step.CHOOSE_LANGUAGE
        menu = _menu()
        turn.conversation.options = [o.reply for o in menu.options]
        return [menu]
    return set_language(turn, chosen)


def set_language(turn: Turn, language: str) -> list[Reply]:
    """Remember the choice; the confirmation is rendered in the new language."""
    turn.conversation.language = language
    turn.language = language
    turn.conversation.reset()
    return [Reply("language/changed")]


async def answer_menu(turn: Turn) -> list[Reply] | None:
    """The reply to the language menu, or None when the person moved on to something else."""
    chosen = language_from_code(turn.command.argument or turn.inbound.text)
    if chosen is None:
        return None
    return set_language(turn, chosen)
