"""`POST /webhooks/telegram`: Telegram updates, processed by python-telegram-bot inside the app.

    Telegram ─ Update JSON ─► secret token (constant time, else 403) ─► Application.process_update
      handlers: /command · text · contact card · button press (answered at once)
        │           · the bot blocked / unblocked (my_chat_member) ─► contact opted out / in
        └─► Inbound ─► receive() (dedup on update_id) ─► Answer ─► sendMessage + buttons
                          └─ a replayed update_id ─► nothing sent again
      sendMessage: 429 → wait retry_after, retry once → still failing → the outbox delivers it

The same handlers serve `rabta telegram polling` (api/telegram_cli.py). Telegram is answered
200 once the reply is sent or queued: a non-2xx makes it deliver the whole update again, which
is only asked for when nothing was done (a 503 before or instead of `receive`), or when the
update is still being handled after `RABTA_SURGE_ANSWER_WITHIN_MS` (the database or Redis
stalls rather than refusing). Then it goes on, not called off, and sends its reply when it can;
the update delivered again meets its record and sends nothing, or, had it failed after all, is
answered then.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import logging
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from redis.exceptions import RedisError
from telegram import (
    Bot,
    ChatMember,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.constants import ChatType
from telegram.error import BadRequest, Forbidden, InvalidToken, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from api.conversations.service import Answer, receive
from api.identity import InvalidPhone, normalise_phone, normalise_text
from api.outbox.senders import retry_after_seconds
from api.outbox.service import PRIORITY_REPLY, OptedOutBy, enqueue, opt_back_in, opt_out
from api.problems import Problem, is_database_unavailable
from api.runtime import Runtime
from api.surge import (
    ANSWER_LATE,
    SHED,
    LateAnswers,
    RedisAway,
    answered_within,
    get_surge_settings,
)
from bot.channels.base import Inbound
from bot.channels.telegram import (
    COMMANDS,
    MAIN_MENU,
    MAX_CALLBACK_BYTES,
    command_text,
    keyword_script,
    menu_text,
    split_message,
)
from bot.dialogue import keywords
from bot.dialogue.keywords import Intent
from bot.dialogue.state import Conversation

log = logging.getLogger(__name__)

_BOT_TOKEN_IN_URL = re.compile(r"/bot[0-9]+:[A-Za-z0-9_-]+")


class RedactBotToken(logging.Filter):
    """httpx logs every request's URL at INFO, and the Bot API's URLs hold the bot token."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "/bot" in message:
            record.msg, record.args = _BOT_TOKEN_IN_URL.sub("/bot<token>", message), None
        return True


logging.getLogger("httpx").addFilter(RedactBotToken())

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
#: The only updates Rabta asks Telegram for (set-webhook and polling). `my_chat_member` is, in
#: a private chat, the person blocking the bot or unblocking it: opting out and back in.
ALLOWED_UPDATES: tuple[str, ...] = ("message", "callback_query", "my_chat_member")
#: Longest flood-control pause taken while Telegram waits for our answer; a longer one sends
#: the reply through the outbox, whose worker honours it.
MAX_INLINE_RETRY_AFTER = 5.0
#: After a failed start-up, how often the first updates may try to reach Telegram again.
REINIT_INTERVAL_SECONDS = 5.0
#: A button whose reply is longer than Telegram's 64 bytes carries this prefix and a key.
LONG_CALLBACK_PREFIX = "k:"
LONG_CALLBACK_TTL_SECONDS = 7 * 24 * 3600

TelegramApplication = Application[Any, Any, Any, Any, Any, Any]

_PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE


# -- the Application of this process ---------------------------------------------------------


class TelegramGateway:
    """This process's python-telegram-bot Application, started once and, when Telegram was
    unreachable at start-up, again on a later update."""

    def __init__(self, application: TelegramApplication) -> None:
        self.application = application
        self._lock = asyncio.Lock()
        self._ready = False
        self._next_try = 0.0

    @property
    def ready(self) -> bool:
        return self._ready

    async def ensure_ready(self) -> bool:
        """Initialise (getMe) and start the Application unless done; False while unreachable."""
        if self._ready:
            return True
        async with self._lock:
            if self._ready:
                return True
            now = time.monotonic()
            if now < self._next_try:
                return False
            try:
                await self.application.initialize()
                await self.application.start()
            except InvalidToken:
                # Its message quotes the token: never logged.
                self._next_try = now + REINIT_INTERVAL_SECONDS
                log.error("telegram: the Bot API refused TELEGRAM_BOT_TOKEN")
                return False
            except Exception as exc:  # start-up must survive any failure to reach Telegram
                self._next_try = now + REINIT_INTERVAL_SECONDS
                log.warning(
                    "telegram: Bot API unreachable (%s); will try again on the next update",
                    type(exc).__name__,
                )
                return False
            self._ready = True
            log.info("telegram: ready as @%s", self.application.bot.username)
            return True

    async def close(self) -> None:
        """Stop the Application and release its HTTP connections."""
        try:
            if self.application.running:
                await self.application.stop()
            await self.application.shutdown()
            # A failed initialize() leaves the bot's HTTP clients open and the Application
            # "not initialised", so its shutdown() skips them.
            await self.application.bot.shutdown()
        except Exception:
            log.warning("telegram: shutdown failed", exc_info=True)
        self._ready = False


def build_application(
    runtime: Runtime, *, polling: bool = False, handlers: TelegramHandlers | None = None
) -> TelegramApplication:
    """An Application with Rabta's handlers (`handlers`, or new ones); an Updater only for
    long polling."""
    settings = runtime.settings
    if not settings.telegram_bot_token:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    builder = Application.builder().token(settings.telegram_bot_token)
    if settings.telegram_api_base_url:
        builder = builder.base_url(settings.telegram_api_base_url)
    # Replies are sent while Telegram waits for the webhook's answer: keep every call short.
    builder = (
        builder.connection_pool_size(32)
        .connect_timeout(5.0)
        .read_timeout(10.0)
        .write_timeout(10.0)
        .pool_timeout(5.0)
    )
    if not polling:
        builder = builder.updater(None)
    application = builder.build()
    (handlers or TelegramHandlers(runtime)).register(application)
    return application


async def start_telegram(runtime: Runtime) -> TelegramGateway | None:
    """Build and start this process's Application; None when TELEGRAM_BOT_TOKEN is unset."""
    if not runtime.settings.telegram_bot_token:
        return None
    gateway = TelegramGateway(build_application(runtime))
    await gateway.ensure_ready()
    return gateway


async def stop_telegram(gateway: TelegramGateway | None) -> None:
    """Stop what `start_telegram` started."""
    if gateway is not None:
        await gateway.close()


# -- the webhook -----------------------------------------------------------------------------


@dataclass
class _Handling:
    """What the handlers tell the route about one update."""

    failed: bool = False


# Set by the route for the update it processes; process_update awaits the handlers in the
# same task, so they see it. Unset under polling, where there is no one to tell.
_handling: contextvars.ContextVar[_Handling | None] = contextvars.ContextVar(
    "telegram_handling", default=None
)


#: Under long polling nobody waits for an update's outcome, and getUpdates has moved past it:
#: one whose handling failed (the database away) is handled again in this process after each
#: of these pauses in turn, then given up (an ERROR line). Its update_id makes a second handling
#: of one that got through after all a replay.
POLLING_RETRY_SECONDS = (5.0, 15.0, 45.0, 120.0, 300.0)
#: Updates whose failed tries are remembered, at most (the oldest forgotten first).
POLLING_TRIES_KEPT = 10_000
#: Seconds that polling, stopping, gives the updates still waiting for another try.
LAST_TRIES_WITHIN = 10.0


@router.post("/telegram", response_class=Response)
async def telegram_webhook(request: Request) -> Response:
    """One Update from Telegram, answered 200 once its reply is sent or queued."""
    gateway: TelegramGateway | None = getattr(request.app.state, "telegram", None)
    if gateway is None:
        raise Problem(404, "Telegram is not configured on this server.")
    _check_secret(request, request.app.state.runtime.settings.telegram_webhook_secret)
    data = await _update_json(request)
    try:
        update = Update.de_json(data, gateway.application.bot)
    except Exception:
        # Telegram sent it (the secret matched), and sending it again would not make it
        # readable: a non-2xx would only have it delivered again and again.
        log.warning(
            "telegram update %s ignored: not readable as an Update (%s)",
            data["update_id"],
            ", ".join(sorted(k for k in data if k != "update_id")) or "empty",
        )
        return Response(status_code=200)
    ignored = ignored_because(update)
    if ignored is not None:
        # Nothing to do, so nothing to ask of the Bot API either: acknowledged at once.
        log.info("telegram update %s ignored: %s", update.update_id, ignored)
        return Response(status_code=200)
    if not await gateway.ensure_ready():
        # Nothing was done: Telegram delivers the update again later.
        raise Problem(503, "Telegram is unreachable from here.", headers={"Retry-After": "10"})
    handling = _Handling()
    token = _handling.set(handling)
    try:
        # The task that handles it copies this context, `handling` with it.
        handled = await answered_within(_handled(gateway, update), call_off=False)
    finally:
        _handling.reset(token)
    if handled is None:
        # A stall, not an outage: Telegram would wait for it. Delivered again, the update is a
        # replay if this one is recorded by then, and answered anew if it failed.
        SHED.labels(ANSWER_LATE, "webhooks").inc()
        request.app.state.runtime.late.happened(LateAnswers.TELEGRAM_503)
        log.info("telegram update not handled in time: 503, it goes on")
        raise Problem(
            503,
            "The update is still being handled; send it again.",
            headers={"Retry-After": str(get_surge_settings().retry_after)},
        )
    if handling.failed:
        raise Problem(
            503, "The update could not be handled; send it again.", headers={"Retry-After": "5"}
        )
    return Response(status_code=200)


def ignored_because(update: Update) -> str | None:
    """Why Rabta leaves `update` alone, or None when it is one the handlers answer: a message in
    a chat, a press of a button under a message in a chat, or the person blocking or unblocking
    the bot in their private chat with it. Edits, channel posts, other membership changes (the
    bot added to a group), polls, inline queries, a button of an inline-mode message (no
    message) and any kind Telegram adds later are acknowledged and dropped; so is a message
    without a chat, which no handler could answer (and whose filters would fail on it)."""
    if update.message is not None:
        return None if update.message.chat is not None else "a message without a chat"
    query = update.callback_query
    if query is not None:
        if query.message is None or query.message.chat is None:
            return "a button press without a message"
        return None
    member = update.my_chat_member
    if member is not None:
        if member.chat.type != ChatType.PRIVATE:
            return f"the bot's membership of a {member.chat.type} chat is not handled"
        if _blocked(member.new_chat_member.status) is None:
            return f"the bot's status {member.new_chat_member.status!r} is not handled"
        return None
    kinds = [k for k, v in update.to_dict().items() if k != "update_id" and v is not None]
    return f"{', '.join(sorted(kinds)) or 'an empty update'} is not handled"


async def _handled(gateway: TelegramGateway, update: Update) -> bool:
    await gateway.application.process_update(update)
    return True


def _check_secret(request: Request, expected: str | None) -> None:
    if not expected:
        # set-webhook refuses to run without a secret, so no genuine update comes without one.
        log.error("telegram webhook refused: TELEGRAM_WEBHOOK_SECRET is not set")
        raise Problem(403, "The webhook secret is not configured.")
    given = request.headers.get(SECRET_HEADER)
    if given is None or not secrets.compare_digest(given.encode(), expected.encode()):
        log.warning("telegram webhook refused: %s secret token", "wrong" if given else "missing")
        raise Problem(403, "The secret token is missing or wrong.")


async def _update_json(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        raise Problem(415, "Telegram sends updates as JSON (application/json).")
    try:
        data = json.loads(await request.body())
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, deep nesting
        raise Problem(422, "The body is not valid JSON.") from None
    update_id = data.get("update_id") if isinstance(data, dict) else None
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        raise Problem(422, "A Telegram Update has an integer update_id.")
    return data


# -- handlers --------------------------------------------------------------------------------


class TelegramHandlers:
    """Turns updates into `Inbound` messages, and answers into Telegram messages."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._application: TelegramApplication | None = None
        #: Failed tries per update_id, under polling.
        self._tries: dict[int, int] = {}
        #: Updates waiting to be handled again, under polling, with their timers.
        self._waiting: dict[int, tuple[asyncio.TimerHandle, Update]] = {}
        #: Polling is stopping: an update that fails now is not tried again.
        self._stopping = False

    def register(self, application: TelegramApplication) -> None:
        """Add the handlers; only private chats are served (answers are personal)."""
        self._application = application
        # First, for polling as for the webhook: what no handler below can answer stops here.
        application.add_handler(TypeHandler(Update, self.skip_ignored), group=-1)
        application.add_handler(CommandHandler(list(COMMANDS), self.on_command, filters=_PRIVATE))
        application.add_handler(MessageHandler(_PRIVATE & filters.CONTACT, self.on_contact))
        application.add_handler(MessageHandler(_PRIVATE & filters.TEXT, self.on_text))
        application.add_handler(MessageHandler(_PRIVATE, self.on_other))
        application.add_handler(CallbackQueryHandler(self.on_button))
        application.add_handler(
            ChatMemberHandler(self.on_blocked_or_unblocked, ChatMemberHandler.MY_CHAT_MEMBER)
        )
        application.add_error_handler(self.on_error)

    async def skip_ignored(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Stop an update Rabta leaves alone before any handler's filter reads it."""
        ignored = ignored_because(update)
        if ignored is not None:
            log.info("telegram update %s ignored: %s", update.update_id, ignored)
            raise ApplicationHandlerStop

    def _script(self, update: Update) -> str:
        user = update.effective_user
        return keyword_script(
            user.language_code if user else None, self.runtime.settings.default_language
        )

    async def on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/start, /help, /lang ur, /pay …: the keyword they stand for."""
        message = update.effective_message
        if message is None or not message.text:
            return
        command, *rest = message.text.split(maxsplit=1)
        name = command.lstrip("/").split("@", 1)[0]  # /start@rabta_bot
        argument = rest[0].strip() if rest else ""
        text = command_text(name, argument, script=self._script(update)) or message.text
        await self._converse(update, context.bot, message.chat_id, text)

    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A typed message, unknown /commands included."""
        message = update.effective_message
        if message is not None:
            await self._converse(update, context.bot, message.chat_id, message.text or "")

    async def on_other(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A photo, voice note, file, location or sticker: its caption is read as typed; with
        none, the person is asked to type (Rabta reads text only)."""
        message = update.effective_message
        if message is not None:
            await self._converse(
                update, context.bot, message.chat_id, message.caption or "", media=True
            )

    async def on_contact(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A shared contact card: only the sender's own, sent by them, verifies (SPEC §3)."""
        message = update.effective_message
        user = update.effective_user
        if message is None or message.contact is None or user is None:
            return
        contact = message.contact
        # A forwarded card was not shared with the contact button, whoever's it is.
        own = contact.user_id == user.id and message.forward_origin is None
        try:
            phone = normalise_phone(contact.phone_number)
        except InvalidPhone:
            phone, own = "", False
        await self._converse(
            update,
            context.bot,
            message.chat_id,
            "",
            contact_phone=phone,
            contact_is_own=own,
        )

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """An inline button: stop its spinner, then read its data as the person's message."""
        query = update.callback_query
        if query is None:
            return
        message = query.message
        if message is not None and message.chat.type != ChatType.PRIVATE:
            return
        try:
            await query.answer()
        except TelegramError as exc:  # the spinner stops by itself; the answer still matters
            log.info("telegram: answerCallbackQuery failed (%s)", type(exc).__name__)
        chat_id = message.chat.id if message is not None else query.from_user.id
        text = await self._button_text(query.data or "", update)
        await self._converse(update, context.bot, chat_id, text)

    async def on_blocked_or_unblocked(
        self, update: Update, context: ContextTypes.DEFAULT_TYPE
    ) -> None:
        """The person blocked the bot (opted out of its messages, as STOP does) or unblocked it
        (opted back in, unless they had sent STOP). Telegram sends this in a private chat for
        nothing else."""
        member = update.my_chat_member
        if member is None or member.chat.type != ChatType.PRIVATE:
            return
        blocked = _blocked(member.new_chat_member.status)
        if blocked is None:
            return
        try:
            await self._set_blocked(member.chat.id, blocked=blocked)
        except Exception as exc:
            self._not_done(update, exc, "recorded")
            return
        log.info(
            "telegram: a user %s the bot; %s",
            "blocked" if blocked else "unblocked",
            "contact opted out" if blocked else "contact opted back in, unless it had sent STOP",
        )

    def _not_done(self, update: Update, exc: Exception, what: str) -> None:
        """An update that could not be `what` (answered, recorded): logged (one line when the
        database is away, the traceback otherwise) and failed, for Telegram to send again."""
        if is_database_unavailable(exc):
            self.runtime.late.happened(LateAnswers.TELEGRAM_AWAY)
            log.info("telegram update %s not %s: database away", update.update_id, what)
        else:
            log.exception("telegram update %s could not be %s", update.update_id, what)
        self._failed(update)

    async def _set_blocked(self, chat_id: int, *, blocked: bool) -> None:
        """Opt the Telegram contact of `chat_id` (a private chat's id is its user's) out of
        Rabta's messages for a block, or back in when the block was why it was out: a STOP
        sent before is kept (only START ends it)."""
        address = str(chat_id)
        statement = (
            opt_out("telegram", address, by=OptedOutBy.BLOCKED)
            if blocked
            else opt_back_in("telegram", address, undoing=OptedOutBy.BLOCKED)
        )
        async with self.runtime.db.transaction() as session:
            await session.execute(statement)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A handler failed unexpectedly: log it (masked) and ask Telegram for the update again."""
        error = context.error
        log.error(
            "telegram update failed: %s",
            type(error).__name__,
            exc_info=(type(error), error, error.__traceback__) if error else None,
        )
        self._failed(update)

    def _failed(self, update: object) -> None:
        """Have the update handled again: the webhook answers 503, and Telegram sends it again;
        under polling it goes back on the application's queue after a pause."""
        handling = _handling.get()
        if handling is not None:
            handling.failed = True
            return
        if not isinstance(update, Update) or self._application is None:
            return
        if self._stopping:
            log.error("telegram update %s failed as polling stops; given up", update.update_id)
            return
        tries = self._tries.pop(update.update_id, 0)
        if tries >= len(POLLING_RETRY_SECONDS):
            log.error("telegram update %s given up after %d tries", update.update_id, tries + 1)
            return
        if len(self._tries) >= POLLING_TRIES_KEPT:
            del self._tries[next(iter(self._tries))]
        self._tries[update.update_id] = tries + 1
        pause = POLLING_RETRY_SECONDS[tries]
        timer = asyncio.get_running_loop().call_later(pause, self._again, update)
        self._waiting[update.update_id] = (timer, update)
        log.info("telegram update %s failed: handled again in %.0f s", update.update_id, pause)

    def _again(self, update: Update) -> None:
        self._waiting.pop(update.update_id, None)
        if self._application is not None:
            self._application.update_queue.put_nowait(update)

    async def last_tries(self, within: float = LAST_TRIES_WITHIN) -> None:
        """Polling stops: the updates still waiting to be handled again are handled once more
        now, not lost with the process (getUpdates has moved past them). One that fails again,
        or is not done `within` seconds, is given up (an ERROR line each)."""
        self._stopping = True
        waiting = []
        for timer, update in self._waiting.values():
            timer.cancel()
            waiting.append(update)
        self._waiting.clear()
        if not waiting or self._application is None:
            return
        log.warning("telegram: %d updates waiting for another try get it now", len(waiting))
        done = 0
        try:
            async with asyncio.timeout(within):
                for update in waiting:
                    await self._application.process_update(update)
                    done += 1
        except TimeoutError:
            for update in waiting[done:]:
                log.error(
                    "telegram update %s not handled as polling stops; given up", update.update_id
                )

    # -- one update ------------------------------------------------------------------------

    async def _converse(
        self,
        update: Update,
        bot: Bot,
        chat_id: int,
        text: str,
        *,
        contact_phone: str | None = None,
        contact_is_own: bool = False,
        media: bool = False,
    ) -> None:
        user = update.effective_user
        if user is None:
            return
        inbound = Inbound(
            channel="telegram",
            sender=str(user.id),
            text=storable(text)[:4096],
            message_id=str(update.update_id),
            contact_phone=contact_phone,
            contact_is_own=contact_is_own,
            media=media,
        )
        try:
            answer = await receive(self.runtime, inbound)
        except Exception as exc:
            # Nothing was committed: a 503 makes Telegram send the update again.
            self._not_done(update, exc, "answered")
            return
        if answer.replayed:
            log.info("telegram update %s replayed: answered before, nothing sent", update.update_id)
            return
        try:
            messages = await self._messages(answer, inbound, contact_card=contact_phone is not None)
        except Exception:
            # Buttons are a nicety; the words must still go out.
            log.exception("telegram: building the reply's buttons failed; sending the text")
            messages = [(chunk, None) for chunk in split_message(answer.text)]
        await self._deliver(bot, chat_id, messages, answer, update.update_id)

    async def _button_text(self, data: str, update: Update) -> str:
        """What pressing a button says: its reply, a menu keyword, or a stored long reply."""
        if data.startswith(LONG_CALLBACK_PREFIX):
            try:
                stored = await self.runtime.redis.get(_callback_key(data))
            except RedisError:
                stored = None
            if stored is None:
                log.info("telegram: an expired long button was pressed")
            return str(stored or "")  # expired: nothing, which shows the help
        user = update.effective_user
        try:
            conversation = (
                await self.runtime.conversations.load("telegram", str(user.id)) if user else None
            )
        except RedisError:
            conversation = None
        text = menu_text(data, language=self._language(conversation, update))
        if text is not None:
            return text
        # The button of the menu just offered is sent as its number, as if typed: the reply
        # (`PAY 3520…`, `LANG UR`) is Latin script and would otherwise switch the guessed
        # language of someone who never chose one to English.
        if conversation is not None and data in conversation.options:
            return str(conversation.options.index(data) + 1)
        return data

    def _language(self, conversation: Conversation | None, update: Update) -> str:
        """The language the conversation is held in, as the dialogue picks it (chosen, else
        guessed, else the default): a menu button keeps it. Without the conversation (Redis
        away), the script of the person's app, as for a command."""
        if conversation is None:
            return self._script(update)
        return (
            conversation.language
            or conversation.guessed_language
            or self.runtime.settings.default_language
        )

    # -- replies ---------------------------------------------------------------------------

    async def _messages(
        self, answer: Answer, inbound: Inbound, *, contact_card: bool
    ) -> list[tuple[str, Any]]:
        """The answer as Telegram messages: text chunks, the last one carrying the buttons."""
        chunks = split_message(answer.text)
        if not chunks:
            return []
        language = answer.language or self.runtime.settings.default_language
        # Someone else's card is refused "with the button below": offer the button again.
        ask_contact = answer.ask_contact or (contact_card and not inbound.contact_is_own)
        inline = await self._inline_keyboard(answer.options)
        if inline is None and not contact_card and not ask_contact:
            if _asks_for_help(inbound.text) and not inbound.media:
                inline = self._main_menu(language)
        contact = self._contact_keyboard(language) if ask_contact else None
        messages: list[tuple[str, Any]] = [(chunk, None) for chunk in chunks]
        last = chunks[-1]
        if inline is not None:
            messages[-1] = (last, inline)
            if contact is not None:
                # One message carries one keyboard: the contact button gets its own line.
                prompt = self._render("telegram/share_prompt", language)
                messages.append((prompt, contact))
        elif contact is not None:
            messages[-1] = (last, contact)
        elif contact_card:
            # The contact keyboard has done its job.
            messages[-1] = (last, ReplyKeyboardRemove())
        return messages

    def _render(self, template: str, language: str) -> str:
        return self.runtime.renderer.render_text(
            template, {}, language=language, channel="telegram"
        )

    def _contact_keyboard(self, language: str) -> ReplyKeyboardMarkup:
        label = self._render("telegram/share_button", language)
        return ReplyKeyboardMarkup(
            [[KeyboardButton(text=label, request_contact=True)]],
            one_time_keyboard=True,
            resize_keyboard=True,
        )

    def _main_menu(self, language: str) -> InlineKeyboardMarkup:
        buttons = [
            InlineKeyboardButton(self._render(b.label, language), callback_data=b.callback_data)
            for b in MAIN_MENU
        ]
        return InlineKeyboardMarkup(_rows(buttons, width=2))

    async def _inline_keyboard(
        self, options: tuple[tuple[str, str], ...]
    ) -> InlineKeyboardMarkup | None:
        buttons = []
        for label, reply in options:
            data = await self._callback_data(reply)
            if data is not None:
                buttons.append(InlineKeyboardButton(label, callback_data=data))
        if not buttons:
            return None
        short = len(buttons) > 3 and all(len(b.text) <= 16 for b in buttons)
        return InlineKeyboardMarkup(_rows(buttons, width=2 if short else 1))

    async def _callback_data(self, reply: str) -> str | None:
        """`reply` itself when it fits Telegram's 64 bytes, else a key to it kept in Redis."""
        if len(reply.encode()) <= MAX_CALLBACK_BYTES:
            return reply
        data = LONG_CALLBACK_PREFIX + hashlib.sha256(reply.encode()).hexdigest()[:32]
        try:
            await self.runtime.redis.set(_callback_key(data), reply, ex=LONG_CALLBACK_TTL_SECONDS)
        except RedisError:
            self.runtime.redis_away.happened(RedisAway.TELEGRAM_BUTTON)
            log.info("telegram: a long button was left out (Redis unavailable)")
            return None
        return data

    async def _deliver(
        self,
        bot: Bot,
        chat_id: int,
        messages: list[tuple[str, Any]],
        answer: Answer,
        update_id: int,
    ) -> None:
        """Send each message; from the first that fails on, the outbox delivers them in order."""
        queued = False
        for index, (text, markup) in enumerate(messages):
            if not queued and await self._send(bot, chat_id, text, markup):
                continue
            queued = True
            await self._enqueue(
                chat_id, text, answer.language, dedup_key=f"telegram-reply:{update_id}:{index}"
            )

    async def _send(self, bot: Bot, chat_id: int, text: str, markup: Any) -> bool:
        """True once Telegram took the message (or can never take it); False: use the outbox."""
        waited = False
        while True:
            try:
                await bot.send_message(chat_id=chat_id, text=text, reply_markup=markup)
                return True
            except RetryAfter as exc:
                wait = retry_after_seconds(exc)
                if waited or wait > MAX_INLINE_RETRY_AFTER:
                    log.warning("telegram flood control (retry after %.0f s): reply queued", wait)
                    return False
                log.info("telegram flood control: retrying in %.1f s", wait)
                await asyncio.sleep(wait)
                waited = True
            except Forbidden:
                # Blocked (or the account deleted): the my_chat_member update saying so may be
                # late or never come (a webhook registered before Rabta asked for it).
                log.info("telegram: the user blocked the bot; reply dropped, contact opted out")
                try:
                    await self._set_blocked(chat_id, blocked=True)
                except Exception as exc:  # the reply is done with; the outbox will meet it
                    log.warning(
                        "telegram: a blocked chat could not be opted out (%s)", type(exc).__name__
                    )
                return True
            except BadRequest as exc:  # a NetworkError subclass in PTB: caught before it
                if markup is None:
                    log.error("telegram refused a reply: %s", exc.message)
                    return True  # the outbox would be refused the same way
                log.error("telegram refused a reply's keyboard (%s); sending the text", exc.message)
                markup = None
            except TelegramError as exc:  # NetworkError, TimedOut, 5xx, a rejected token
                log.warning("telegram send failed (%s): reply queued", type(exc).__name__)
                return False

    async def _enqueue(
        self, chat_id: int, text: str, language: str | None, *, dedup_key: str
    ) -> None:
        try:
            async with self.runtime.db.transaction() as session:
                await enqueue(
                    session,
                    channel="telegram",
                    to=str(chat_id),
                    body=text,
                    kind="reply",
                    language=language,
                    priority=PRIORITY_REPLY,
                    dedup_key=dedup_key,
                )
        except Exception:
            log.exception("telegram reply lost: neither Telegram nor the outbox took it")


#: What JSON can spell (`\\u0000`, a lone `\\ud800`) but PostgreSQL cannot store in text.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """`text` without NUL characters, and with a lone UTF-16 surrogate (half an emoji) as
    U+FFFD: the conversation stores what a complaint says and echoes what was typed, and a
    message it cannot store would fail every time Telegram delivered it again. Telegram's own
    clients send neither; a pair of surrogates is one character once JSON is read."""
    return _UNSTORABLE.sub(lambda found: "" if found.group() == "\x00" else "\ufffd", text)


def _blocked(status: str) -> bool | None:
    """What the bot's new status in a private chat says: True the person blocked it ("kicked"),
    False they unblocked it ("member"), None anything else (never sent for a private chat)."""
    if status == ChatMember.BANNED:
        return True
    if status == ChatMember.MEMBER:
        return False
    return None


def _callback_key(data: str) -> str:
    return f"rabta:telegram:button:{data.removeprefix(LONG_CALLBACK_PREFIX)}"


def _rows(buttons: list[Any], *, width: int) -> list[list[Any]]:
    return [buttons[i : i + width] for i in range(0, len(buttons), width)]


def _asks_for_help(text: str) -> bool:
    """The message asked for the menu (HELP, /start, an empty message): show its buttons."""
    return keywords.parse(normalise_text(text)).intent in (Intent.HELP, Intent.EMPTY)
