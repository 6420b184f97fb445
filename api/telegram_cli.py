"""`rabta telegram …` (polling, set-webhook, delete-webhook, webhook-info), the Telegram side of
`rabta chat`, and the local fake Bot API that chat and the tests talk to.

`polling` runs the very handlers of `POST /webhooks/telegram` with an Updater doing long polling,
for a machine without a public HTTPS URL. `rabta chat --channel telegram` posts Update JSON to
the real webhook and shows what the bot sent to a `FakeBotApi` served on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

import typer
import uvicorn
from rich.console import Console
from rich.markup import escape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.cli_support import err, settings_or_exit
from api.settings import Settings, get_settings

log = logging.getLogger(__name__)

T = TypeVar("T")

telegram_app = typer.Typer(
    help="Telegram: long polling without a public URL, and the webhook registration.",
    no_args_is_help=True,
)

console = Console()

WEBHOOK_PATH = "/webhooks/telegram"
#: Telegram's rule for secret_token: 1-256 characters of A-Z a-z 0-9 _ -.
_SECRET_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def _settings_or_exit() -> Settings:
    settings = settings_or_exit()
    if not settings.telegram_bot_token:
        err.print("[red]TELEGRAM_BOT_TOKEN is not set.[/red]")
        raise typer.Exit(2)
    return settings


def _bot(settings: Settings) -> Any:
    from telegram import Bot

    assert settings.telegram_bot_token
    return Bot(
        settings.telegram_bot_token,
        base_url=settings.telegram_api_base_url or "https://api.telegram.org/bot",
    )


# -- commands --------------------------------------------------------------------------------


@telegram_app.command("polling")
def polling_command(
    drop_pending_updates: Annotated[
        bool, typer.Option(help="Forget the updates Telegram queued while the bot was off.")
    ] = False,
) -> None:
    """Answer Telegram by long polling (deletes the webhook first); Ctrl-C stops."""
    from api.logs import configure_logging
    from api.migrate import upgrade

    settings = _settings_or_exit()
    configure_logging(json_lines=settings.is_production)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per getUpdates
    upgrade(settings.database_url)
    _run_against_telegram(run_polling(settings, drop_pending_updates=drop_pending_updates))


def _run_against_telegram(work: Coroutine[Any, Any, T]) -> T:
    """Run `work`; Telegram refusing or unreachable is a one-line error, not a traceback."""
    from telegram.error import InvalidToken, TelegramError

    try:
        return asyncio.run(work)
    except InvalidToken:
        err.print("[red]Telegram refused TELEGRAM_BOT_TOKEN.[/red]")  # its text holds the token
    except TelegramError as exc:
        err.print(f"[red]Telegram: {escape(exc.message)}[/red]")
    raise typer.Exit(1)


async def run_polling(
    settings: Settings,
    *,
    drop_pending_updates: bool = False,
    stop: asyncio.Event | None = None,
    poll_timeout: int = 10,
) -> None:
    """Poll getUpdates and answer with the webhook's handlers until `stop` (or SIGINT/SIGTERM)."""
    from api.runtime import Runtime
    from api.webhooks.telegram import ALLOWED_UPDATES, TelegramHandlers, build_application

    stop = stop or _stop_on_signals()
    runtime = Runtime.create(settings)
    try:
        handlers = TelegramHandlers(runtime)
        application = build_application(runtime, polling=True, handlers=handlers)
        async with application:  # initialize() (getMe) … shutdown()
            assert application.updater is not None
            # start_polling deletes any webhook before the first getUpdates (its bootstrap).
            await application.updater.start_polling(
                timeout=poll_timeout,
                allowed_updates=list(ALLOWED_UPDATES),
                drop_pending_updates=drop_pending_updates,
            )
            await application.start()
            console.print(
                f"[green]Polling Telegram as @{application.bot.username}[/green]; Ctrl-C stops."
            )
            await stop.wait()
            await application.updater.stop()
            await handlers.last_tries()
            await application.stop()
    finally:
        await runtime.close()


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    if threading.current_thread() is threading.main_thread():
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
    return stop


@telegram_app.command("set-webhook")
def set_webhook_command(
    url: Annotated[str, typer.Argument(help="https://your.host/webhooks/telegram")],
    drop_pending_updates: Annotated[
        bool, typer.Option(help="Forget the updates Telegram queued so far.")
    ] = False,
) -> None:
    """Register URL with Telegram, with TELEGRAM_WEBHOOK_SECRET as its secret token."""
    settings = _settings_or_exit()
    secret = settings.telegram_webhook_secret
    if not secret:
        err.print(
            "[red]TELEGRAM_WEBHOOK_SECRET is not set:[/red] the webhook refuses every update "
            "without it. Set it (1-256 characters of A-Z a-z 0-9 _ -) and try again."
        )
        raise typer.Exit(2)
    if not 1 <= len(secret) <= 256 or not set(secret) <= _SECRET_CHARS:
        err.print("[red]TELEGRAM_WEBHOOK_SECRET must be 1-256 characters of A-Z a-z 0-9 _ -.[/red]")
        raise typer.Exit(2)
    for warning in webhook_url_warnings(url):
        err.print(f"[yellow]Warning:[/yellow] {warning}")
    info = _run_against_telegram(
        _set_webhook(settings, url, secret=secret, drop_pending_updates=drop_pending_updates)
    )
    console.print(f"[green]Webhook set:[/green] {info.get('url', url)}")
    if info.get("pending_update_count"):
        console.print(f"  {info['pending_update_count']} update(s) waiting to be delivered")


def webhook_url_warnings(url: str) -> list[str]:
    """What looks wrong about a webhook URL (Telegram calls only HTTPS, on 443/80/88/8443)."""
    parts = urlsplit(url)
    warnings = []
    if parts.scheme != "https":
        warnings.append(f"{url} is not https: Telegram only calls HTTPS webhooks.")
    if not parts.path.rstrip("/").endswith(WEBHOOK_PATH):
        warnings.append(f"{url} does not end with {WEBHOOK_PATH}, where Rabta listens.")
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None and port not in (443, 80, 88, 8443):
        warnings.append(f"port {port}: Telegram only calls ports 443, 80, 88 and 8443.")
    return warnings


async def _set_webhook(
    settings: Settings, url: str, *, secret: str, drop_pending_updates: bool
) -> dict[str, Any]:
    from api.webhooks.telegram import ALLOWED_UPDATES

    async with _bot(settings) as bot:
        await bot.set_webhook(
            url=url,
            secret_token=secret,
            allowed_updates=list(ALLOWED_UPDATES),
            drop_pending_updates=drop_pending_updates,
        )
        info = await bot.get_webhook_info()
    return dict(info.to_dict())


@telegram_app.command("delete-webhook")
def delete_webhook_command(
    drop_pending_updates: Annotated[
        bool, typer.Option(help="Forget the updates Telegram queued so far.")
    ] = False,
) -> None:
    """Stop Telegram calling the webhook (polling needs this; `polling` does it itself)."""
    settings = _settings_or_exit()

    async def delete() -> None:
        async with _bot(settings) as bot:
            await bot.delete_webhook(drop_pending_updates=drop_pending_updates)

    _run_against_telegram(delete())
    console.print("[green]Webhook deleted.[/green]")


@telegram_app.command("webhook-info")
def webhook_info_command() -> None:
    """What Telegram knows of the webhook: URL, pending updates, last error."""
    settings = _settings_or_exit()

    async def info() -> dict[str, Any]:
        async with _bot(settings) as bot:
            return dict((await bot.get_webhook_info()).to_dict())

    console.print_json(json.dumps(_run_against_telegram(info()), default=str))


# -- a fake Bot API --------------------------------------------------------------------------


@dataclass
class ApiCall:
    """One request the fake Bot API received."""

    method: str
    params: dict[str, Any]
    token: str


class FakeBotApi:
    """A local Bot API: getMe, sendMessage (recorded), answerCallbackQuery, set/deleteWebhook,
    getWebhookInfo and getUpdates, with switches for flood control and outages."""

    BOT_USER: dict[str, Any] = {  # noqa: RUF012 - constant
        "id": 7000000001,
        "is_bot": True,
        "first_name": "Rabta",
        "username": "rabta_bot",
        "can_join_groups": False,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
    }

    def __init__(self) -> None:
        self.calls: list[ApiCall] = []
        #: sendMessage answers 429 with this retry_after, this many times (`flood`).
        self.flood_retry_after = 0
        self.flood_times = 0
        #: Every call answers 502 Bad Gateway while set.
        self.down = False
        self.webhook: dict[str, Any] = {}
        self.updates: list[dict[str, Any]] = []
        #: Where it is served (TELEGRAM_API_BASE_URL), once `serve_fake_bot_api` runs it.
        self.base_url = ""
        self._new_update = asyncio.Event()
        self._message_ids = itertools.count(1)
        self.app = Starlette(
            routes=[Route("/bot{token}/{method}", self._handle, methods=["GET", "POST"])]
        )

    def flood(self, retry_after: int, times: int = 1) -> None:
        """Answer the next `times` sendMessage calls with 429 and `retry_after`."""
        self.flood_retry_after, self.flood_times = retry_after, times

    def push_update(self, update: dict[str, Any]) -> None:
        """Queue an update for getUpdates (long polling)."""
        self.updates.append(update)
        self._new_update.set()

    def called(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method]

    @property
    def sent(self) -> list[dict[str, Any]]:
        """The parameters of every sendMessage Telegram accepted, in order."""
        return [c.params for c in self.calls if c.method == "sendMessage" and c.params.get("_ok")]

    async def _handle(self, request: Request) -> JSONResponse:
        method = request.path_params["method"]
        params = await _params(request)
        call = ApiCall(method, params, request.path_params["token"])
        self.calls.append(call)
        if self.down:
            return _error(502, "Bad Gateway")
        if method == "getMe":
            return _ok(self.BOT_USER)
        if method == "sendMessage":
            if self.flood_times > 0:
                self.flood_times -= 1
                return _error(
                    429,
                    f"Too Many Requests: retry after {self.flood_retry_after}",
                    parameters={"retry_after": self.flood_retry_after},
                )
            if not params.get("text"):
                return _error(400, "Bad Request: message text is empty")
            params["_ok"] = True
            chat_id = int(params["chat_id"])
            return _ok(
                {
                    "message_id": next(self._message_ids),
                    "date": int(time.time()),
                    "chat": {"id": chat_id, "type": "private"},
                    "from": self.BOT_USER,
                    "text": params["text"],
                }
            )
        if method == "answerCallbackQuery":
            return _ok(True)
        if method == "setWebhook":
            self.webhook = {"url": params.get("url", ""), **params}
            return _ok(True)
        if method == "deleteWebhook":
            self.webhook = {}
            return _ok(True)
        if method == "getWebhookInfo":
            return _ok(
                {
                    "url": self.webhook.get("url", ""),
                    "has_custom_certificate": False,
                    "pending_update_count": 0,
                }
            )
        if method == "getUpdates":
            return _ok(await self._get_updates(params))
        if method in ("close", "logOut", "setMyCommands"):
            return _ok(True)
        return _error(404, "Not Found")

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        self.updates = [u for u in self.updates if u["update_id"] >= offset]
        if not self.updates:
            self._new_update.clear()
            # A short long-poll keeps shutdown quick.
            wait = min(float(params.get("timeout") or 0), 0.5)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_update.wait(), timeout=wait)
        return list(self.updates)


async def _params(request: Request) -> dict[str, Any]:
    # PTB posts form fields, JSON-encoding the structured ones (reply_markup, allowed_updates).
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await request.body()
        return dict(json.loads(body)) if body else {}
    form = await request.form()
    params: dict[str, Any] = {}
    for key, value in form.items():
        if not isinstance(value, str):
            continue
        if key in ("reply_markup", "allowed_updates", "offset", "timeout", "drop_pending_updates"):
            with contextlib.suppress(ValueError):
                params[key] = json.loads(value)
                continue
        params[key] = value
    return params


def _ok(result: Any) -> JSONResponse:
    return JSONResponse({"ok": True, "result": result})


def _error(status: int, description: str, **extra: Any) -> JSONResponse:
    body = {"ok": False, "error_code": status, "description": description, **extra}
    return JSONResponse(body, status_code=status)


class _QuietServer(uvicorn.Server):
    """uvicorn inside another program: Ctrl-C belongs to that program, not to this server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serve_fake_bot_api(fake: FakeBotApi) -> AsyncIterator[str]:
    """Serve `fake` on 127.0.0.1 (a free port) for the block; yields TELEGRAM_API_BASE_URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        fake.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
    )
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # the start-up error, if any
                raise RuntimeError("the fake Bot API did not start")
            await asyncio.sleep(0.01)
        fake.base_url = f"http://127.0.0.1:{port}/bot"
        yield fake.base_url
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await task
        sock.close()


# -- rabta chat --channel telegram -----------------------------------------------------------

#: Only ever sent to the local fake Bot API.
CHAT_TOKEN = "100000001:rabta-chat-fake-token"  # noqa: S105 - a fake, for the fake API


@dataclass
class ChatUser:
    """A Telegram user in a private chat with the bot, building the updates Telegram would send."""

    user_id: int
    first_name: str = "Rabta chat"
    language_code: str | None = None
    _update_ids: Iterator[int] = field(
        default_factory=lambda: itertools.count(secrets.randbelow(2**30) + 1)
    )
    _message_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @classmethod
    def for_phone(cls, phone: str, **kwargs: Any) -> ChatUser:
        """The same user id for the same phone, every session."""
        digits = "".join(c for c in phone if c.isdigit())
        return cls(user_id=6_000_000_000 + int(digits[-9:] or 0), **kwargs)

    def _user(self) -> dict[str, Any]:
        user: dict[str, Any] = {"id": self.user_id, "is_bot": False, "first_name": self.first_name}
        if self.language_code:
            user["language_code"] = self.language_code
        return user

    def _message(self, **content: Any) -> dict[str, Any]:
        return {
            "update_id": next(self._update_ids),
            "message": {
                "message_id": next(self._message_ids),
                "date": int(time.time()),
                "chat": {"id": self.user_id, "type": "private", "first_name": self.first_name},
                "from": self._user(),
                **content,
            },
        }

    def text(self, text: str) -> dict[str, Any]:
        """A typed message; a leading /command is marked as Telegram marks it."""
        content: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            length = len(text.split(maxsplit=1)[0])
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return self._message(**content)

    def contact(self, phone: str, *, own: bool = True) -> dict[str, Any]:
        """A contact card: the user's own (the share button), or someone else's."""
        card: dict[str, Any] = {"phone_number": phone.lstrip("+"), "first_name": self.first_name}
        card["user_id"] = self.user_id if own else self.user_id + 1
        return self._message(contact=card)

    def press(self, data: str, *, message_id: int = 1) -> dict[str, Any]:
        """A press of an inline button carrying `data`, under the bot's message `message_id`."""
        return {
            "update_id": next(self._update_ids),
            "callback_query": {
                "id": secrets.token_hex(8),
                "from": self._user(),
                "chat_instance": str(self.user_id),
                "data": data,
                "message": {
                    "message_id": message_id,
                    "date": int(time.time()),
                    "chat": {"id": self.user_id, "type": "private"},
                    "from": FakeBotApi.BOT_USER,
                    "text": "…",
                },
            },
        }


async def run_telegram_chat(
    *, phone: str, console: Console, lines: Iterator[str] | None = None
) -> int:
    """Talk to the bot as a Telegram user whose phone is `phone`, through the real webhook."""
    from api.chat import (
        _show_outbound,
        in_process_client,
        outbox_offset,
        terminal_lines,
        typed_lines,
    )
    from api.identity import InvalidPhone, normalise_phone
    from api.main import create_app
    from api.migrate import upgrade_async
    from api.webhooks.telegram import SECRET_HEADER

    try:
        phone = normalise_phone(phone)
    except InvalidPhone:
        console.print(f"[red]{escape(repr(phone))} is not a phone number.[/red]")
        return 2
    settings = get_settings()
    await upgrade_async(settings.database_url)
    interactive = lines is None and sys.stdin.isatty()
    source = lines if lines is not None else terminal_lines(interactive)
    seen = outbox_offset(settings)
    user = ChatUser.for_phone(phone)
    fake = FakeBotApi()
    console.print(
        f"[dim]telegram as user {user.user_id} (phone {phone}); /share sends your contact, "
        "/share +92… someone else's, #N presses button N; an empty line or Ctrl-D ends.[/dim]"
    )
    async with serve_fake_bot_api(fake) as base_url:
        secret = settings.telegram_webhook_secret or secrets.token_urlsafe(24)
        chat_settings = settings.model_copy(
            update={
                "telegram_bot_token": CHAT_TOKEN,
                "telegram_webhook_secret": secret,
                "telegram_api_base_url": base_url,
            }
        )
        app = create_app(chat_settings)
        buttons: list[str] = []
        async with in_process_client(app, settings.public_base_url) as client:
            async for line in typed_lines(
                source,
                interactive=interactive,
                echo=lambda line: console.print(f"[bold]> {escape(line)}[/bold]"),
            ):
                update = _update_for(user, line.strip(), phone, buttons, console)
                if update is None:
                    continue
                before = len(fake.sent)
                response = await client.post(
                    WEBHOOK_PATH, json=update, headers={SECRET_HEADER: secret}
                )
                if response.status_code != 200:
                    console.print(f"[red]{response.status_code}[/red] {escape(response.text)}")
                for sent in fake.sent[before:]:
                    buttons = _show_sent(sent, console) or buttons
                await _show_outbound(app, console, seen)
    return 0


def _update_for(
    user: ChatUser, line: str, phone: str, buttons: list[str], console: Console
) -> dict[str, Any] | None:
    if line == "/share" or line.startswith("/share "):
        other = line.removeprefix("/share").strip()
        return user.contact(other, own=False) if other else user.contact(phone)
    if line.startswith("#") and line[1:].isdigit():
        index = int(line[1:]) - 1
        if not 0 <= index < len(buttons):
            console.print("[dim]no such button[/dim]")
            return None
        return user.press(buttons[index])
    return user.text(line)


def _show_sent(sent: dict[str, Any], console: Console) -> list[str]:
    """Print one message the bot sent; the callback data of its inline buttons, if any."""
    # As `rabta chat` prints replies: whole lines, wrapped by the terminal, not cut mid-word.
    console.print(sent.get("text", ""), style="cyan", markup=False, soft_wrap=True)
    markup = sent.get("reply_markup") or {}
    data: list[str] = []
    labels: list[str] = []
    for row in markup.get("inline_keyboard", []):
        for button in row:
            data.append(button.get("callback_data", ""))
            labels.append(f"[{len(data)}] {button.get('text', '')}")
    if labels:
        console.print(f"[green]  buttons: {escape(' · '.join(labels))}[/green]", soft_wrap=True)
    for row in markup.get("keyboard", []):
        for button in row:
            kind = " (shares your number: /share)" if button.get("request_contact") else ""
            label = escape("[" + button.get("text", "") + "]")
            console.print(f"[green]  keyboard: {label}{kind}", soft_wrap=True)
    if markup.get("remove_keyboard"):
        console.print("[dim]  (keyboard removed)[/dim]")
    return data
