"""Telegram: the chat conversation with inline buttons and a "share my phone number" keyboard.

The text is plain (no parse mode: nothing to escape, RTL needs nothing special); the options
travel as buttons, never as text. What Telegram-only input means to the conversation lives here
too, with no python-telegram-bot import: bot commands and the main-menu buttons become the
keywords the dialogue already understands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from bot.dialogue.keywords import KEYWORDS, Intent
from bot.i18n import detect_language

#: Telegram's longest message text; longer replies go as several messages.
MAX_MESSAGE_CHARS = 4096
#: Telegram's limit on a button's callback_data, in bytes.
MAX_CALLBACK_BYTES = 64


class TelegramChannel:
    name = "telegram"
    max_chars: int | None = MAX_MESSAGE_CHARS

    def compose(self, texts: Sequence[str], options: Sequence[tuple[str, str]]) -> str:
        """Replies as paragraphs; the options become buttons, so they are not repeated here."""
        return "\n\n".join(t for t in texts if t)


telegram = TelegramChannel()


#: Bot commands (`/start`, `/lang ur`) → what they ask for. `/start` is Telegram's "open the
#: bot" button, so it shows the menu; resuming notifications stays the START keyword.
COMMANDS: dict[str, Intent] = {
    "start": Intent.HELP,
    "help": Intent.HELP,
    "menu": Intent.HELP,
    "lang": Intent.LANGUAGE,
    "language": Intent.LANGUAGE,
    "pay": Intent.PAY,
    "complaint": Intent.COMPLAINT,
    "track": Intent.TRACK,
    "stop": Intent.STOP,
}

# A command carries no words to guess the language from, so it is spelled as the keyword in
# the language of the person's Telegram app: /start from an Urdu phone reads as مدد and is
# answered in Urdu until they choose a language. Sindhi and Pashto spell it with a keyword only
# they write (`_keyword_read_as`); Punjabi shares Urdu's keywords.
_KEYWORD_IN: dict[Intent, dict[str, str]] = {
    Intent.HELP: {"en": "HELP", "ur": "مدد", "ur_Latn": "MADAD"},
    Intent.LANGUAGE: {"en": "LANG", "ur": "زبان", "ur_Latn": "ZABAN"},
    Intent.PAY: {"en": "PAY", "ur": "ادائیگی", "ur_Latn": "PAISE"},
    Intent.COMPLAINT: {"en": "COMPLAINT", "ur": "شکایت", "ur_Latn": "SHIKAYAT"},
    Intent.TRACK: {"en": "TRACK", "ur": "ٹریک", "ur_Latn": "HALAT"},
    Intent.STOP: {"en": "STOP", "ur": "بند", "ur_Latn": "BAND"},
}

_ARABIC_SCRIPT = frozenset({"ur", "sd", "ps", "pa", "pa_Arab", "skr", "bal"})
#: Languages whose own keywords the dialogue tells from Urdu's.
_OWN_KEYWORDS = frozenset({"sd", "ps"})


def keyword_script(language_code: str | None, default_language: str) -> str:
    """`en`, `ur`, `ur_Latn`, `sd` or `ps`: how a command's keyword is spelled for this person.

    `language_code` is the IETF tag of the person's Telegram app (`ur`, `en-GB`, or none).
    """
    primary = (language_code or "").replace("_", "-").split("-", 1)[0].casefold()
    if primary == "en":
        return "en"
    if primary in _ARABIC_SCRIPT:
        return language_script(primary)
    return language_script(default_language)


def language_script(language: str) -> str:
    """How `language`'s keywords are spelled: its own for English, Roman Urdu, Sindhi and
    Pashto, Urdu's for the other Arabic-script languages."""
    return language if language in ("en", "ur_Latn", *_OWN_KEYWORDS) else "ur"


def intent_text(intent: Intent, argument: str = "", *, script: str = "en") -> str:
    """The message the dialogue would get had the person typed the keyword for `intent`."""
    if script in _OWN_KEYWORDS:
        keyword = _keyword_read_as(intent, script)
    else:
        keyword = _usual_keyword(intent, script)
    return f"{keyword} {argument}".strip()


def _usual_keyword(intent: Intent, script: str) -> str:
    spellings = _KEYWORD_IN.get(intent, {})
    return spellings.get(script) or spellings.get("en") or intent.value.upper()


def command_text(command: str, argument: str, *, script: str) -> str | None:
    """The text a bot command stands for, or None when it is not one of Rabta's commands."""
    intent = COMMANDS.get(command.casefold())
    if intent is None:
        return None
    # /start's argument is a deep-link payload, not something the person typed.
    return intent_text(intent, "" if command.casefold() == "start" else argument, script=script)


@dataclass(frozen=True, slots=True)
class MenuButton:
    """A button of the main menu shown with the help text: what it sends and its label."""

    callback_data: str
    intent: Intent
    label: str


#: The main menu under the help text (the help text itself says to send a CNIC for
#: eligibility). `menu:payments` is the shape Telegram clients already
#: send for this bot (tests/payloads/telegram_updates.json).
MAIN_MENU: tuple[MenuButton, ...] = (
    MenuButton("menu:payments", Intent.PAY, "telegram/button_payments"),
    MenuButton("menu:complaint", Intent.COMPLAINT, "telegram/button_complaint"),
    MenuButton("menu:track", Intent.TRACK, "telegram/button_track"),
    MenuButton("menu:language", Intent.LANGUAGE, "telegram/button_language"),
)
_MENU_BY_DATA = {button.callback_data: button for button in MAIN_MENU}


def menu_text(callback_data: str, *, language: str) -> str | None:
    """The text a main-menu button stands for, in the conversation's `language`, or None when
    `callback_data` is not one.

    The dialogue guesses the language from each message's letters, so a button spelled in
    another language (the app's, say) would switch the conversation away from the language its
    menu was shown in."""
    button = _MENU_BY_DATA.get(callback_data)
    if button is None:
        return None
    return _keyword_read_as(button.intent, language)


@cache
def _keyword_read_as(intent: Intent, language: str) -> str:
    """The keyword for `intent` whose letters the dialogue reads as `language`: its usual
    spelling in that language's script, else the first alias of the keyword table that is
    (a Sindhi spelling for `sd`); the usual spelling when none is."""
    usual = _usual_keyword(intent, "ur" if language in _OWN_KEYWORDS else language_script(language))
    spellings = (usual, *KEYWORDS.get(intent, ()))
    return next((s for s in spellings if detect_language(s) == language), usual)


def split_message(text: str, limit: int = MAX_MESSAGE_CHARS) -> list[str]:
    """Cut a reply into messages Telegram accepts, at paragraph or line breaks when possible."""
    text = text.strip()
    if not text:
        return []
    parts: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n\n", 0, limit + 1)
        if cut <= 0:
            cut = text.rfind("\n", 0, limit + 1)
        if cut <= 0:
            cut = text.rfind(" ", 0, limit + 1)
        if cut <= 0:
            cut = limit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        parts.append(text)
    return parts
