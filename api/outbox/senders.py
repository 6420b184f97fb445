"""Channel senders: one object per channel that hands a message to its provider.

A sender returns a `SendResult` or raises `RetryableSendError` (try again later, maybe after the
provider's `retry_after`) or `PermanentSendError` (this message can never be delivered). The
delivery loop in `api.outbox.service` decides what each outcome does to the outbox row.

Neither Twilio's Messages API nor Telegram's sendMessage accepts an idempotency key, so a send
whose response is lost (a timeout after the provider accepted it, a worker killed before it
committed) may be repeated once: that is the outbox's at-least-once boundary. Senders keep it
narrow with bounded timeouts, well inside the worker's lease.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import datetime as dt
import json
import logging
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from api.registry.models import OutboundMessage
from api.settings import Settings
from bot.segments import measure

try:  # advisory file locks keep lines whole across processes; POSIX only
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

TWILIO_STATUS_PATH = "/webhooks/twilio/status"
#: The query parameter of the status callback URL that names the outbox row: Twilio may call
#: back before the worker has committed the MessageSid, and this finds the row all the same.
#: Twilio signs the whole URL, query included, so the id cannot be altered.
TWILIO_STATUS_OUTBOX_PARAM = "outbox"
#: Twilio allows 1600 characters per body; longer bodies are a programming error, not a retry.
TWILIO_MAX_BODY = 1600
#: A send never takes longer than this, so it always ends well inside the worker's lease.
SEND_TIMEOUT_SECONDS = 15.0
#: `PermanentSendError.code` of a Telegram send refused with Forbidden: the user blocked the
#: bot (or deleted their account). The outbox opts the contact out, as STOP does.
TELEGRAM_BLOCKED = "forbidden"
#: How long to hold off after a Twilio 429 that names no Retry-After (Twilio documents none for
#: error 20429: the request was not processed and is safe to retry after backing off).
TWILIO_THROTTLE_SECONDS = 10.0


@dataclass(frozen=True)
class SendResult:
    """What the provider said when it accepted the message."""

    provider_id: str


class SendError(Exception):
    """A message the provider did not accept."""


class RetryableSendError(SendError):
    """Try again later: after `retry_after` seconds when the provider said so (HTTP 429)."""

    def __init__(self, reason: str = "temporary failure", retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class PermanentSendError(SendError):
    """This message can never be delivered as it is (invalid number, blocked bot, …)."""

    def __init__(self, reason: str, code: int | str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.code = code


class Sender(Protocol):
    """Delivers messages of one channel."""

    channel: str

    async def send(self, message: OutboundMessage, *, use_template: bool = False) -> SendResult:
        """Hand `message` to the provider; `use_template` asks for its WhatsApp template."""
        ...


#: Channel → the sender that delivers it.
Senders = dict[str, Sender]


async def close_senders(senders: Senders) -> None:
    """Release the senders' HTTP clients (each once, though one may serve several channels)."""
    seen: set[int] = set()
    for sender in senders.values():
        if id(sender) in seen:
            continue
        seen.add(id(sender))
        closer = getattr(sender, "aclose", None)
        if closer is not None:
            try:
                await closer()
            except Exception:
                log.warning("closing the %s sender failed", sender.channel, exc_info=True)


# -- console ---------------------------------------------------------------------------------


class ConsoleSender:
    """Development and demos: appends one JSON object per message to `RABTA_CONSOLE_OUTBOX`."""

    def __init__(self, path: Path, channel: str = "*") -> None:
        self.channel = channel
        self.path = Path(path)
        # One writer at a time in this process; flock orders writers across processes.
        self._lock = threading.Lock()

    async def send(self, message: OutboundMessage, *, use_template: bool = False) -> SendResult:
        """Write the message as one JSON line; the provider id is `console-<id>`."""
        cost = measure(message.body) if message.channel == "sms" else None
        record: dict[str, Any] = {
            "channel": message.channel,
            "to": message.to,
            "body": message.body,
            "kind": message.kind,
            "id": message.id,
            "language": message.language,
            "segments": cost.segments if cost else None,
            "encoding": cost.encoding if cost else None,
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        if use_template:
            record["template"] = message.template
            record["template_variables"] = (
                json.loads(message.template_variables) if message.template_variables else None
            )
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        await asyncio.to_thread(self._append, line)
        return SendResult(provider_id=f"console-{message.id}")

    def _append(self, line: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                # One write() of the whole line under O_APPEND: readers never see half a line.
                os.write(fd, line)
            finally:
                os.close(fd)  # closing releases the flock


# -- Twilio ----------------------------------------------------------------------------------

#: The Retry-After header of the last 429 Twilio answered in this task (the SDK's exception
#: carries no headers). A ContextVar because concurrent sends share one HTTP client.
_twilio_retry_after: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "twilio_retry_after", default=None
)

#: Twilio errors that concern the account or configuration, not the message: retry (someone
#: will fix the credentials) rather than fail every message in the outbox.
_TWILIO_ACCOUNT_STATUSES = frozenset({401, 403})


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _twilio_http_client(api_base_url: str | None, timeout: float) -> Any:
    """Twilio's aiohttp client with a real timeout, optionally aimed at another base URL."""
    from twilio.http.async_http_client import AsyncTwilioHttpClient

    quiet = logging.getLogger("api.outbox.twilio_http")
    # The SDK logs ~10 INFO lines per request (URL, headers): noise at our volumes.
    quiet.setLevel(logging.WARNING)

    class _Client(AsyncTwilioHttpClient):
        async def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if api_base_url:
                # https://api.twilio.com/2010-04-01/... → <fake server>/2010-04-01/...
                parts = urlsplit(url)
                query = f"?{parts.query}" if parts.query else ""
                url = api_base_url.rstrip("/") + parts.path + query
            auth = kwargs.pop("auth", None)
            if auth is not None:
                # aiohttp deprecates BasicAuth objects (the SDK's way); send the header ourselves.
                token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
                kwargs["headers"] = {
                    **(kwargs.get("headers") or {}),
                    "Authorization": f"Basic {token}",
                }
            if kwargs.get("timeout") is None:
                # The SDK passes timeout=None, which aiohttp reads as "wait forever".
                kwargs["timeout"] = timeout
            response = await super().request(method, url, *args, **kwargs)
            if response.status_code == 429:
                _twilio_retry_after.set(_parse_retry_after(response.headers.get("Retry-After")))
            return response

    return _Client(timeout=timeout, logger=quiet)


class TwilioSender:
    """SMS or WhatsApp through Twilio's Messages API, with a delivery status callback."""

    def __init__(
        self,
        settings: Settings,
        channel: str = "sms",
        *,
        api_base_url: str | None = None,
        timeout: float = SEND_TIMEOUT_SECONDS,
    ) -> None:
        if channel not in ("sms", "whatsapp"):
            raise ValueError(f"Twilio sends sms or whatsapp, not {channel!r}")
        if not (settings.twilio_account_sid and settings.twilio_auth_token):
            raise ValueError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are needed to send")
        sender = settings.twilio_from
        if channel == "whatsapp":
            sender = settings.twilio_whatsapp_from or settings.twilio_from
        if not sender:
            name = "TWILIO_WHATSAPP_FROM" if channel == "whatsapp" else "TWILIO_FROM"
            raise ValueError(f"{name} is needed to send {channel}")
        self.channel = channel
        self._account_sid = settings.twilio_account_sid
        self._auth_token = settings.twilio_auth_token
        self._from = _whatsapp(sender) if channel == "whatsapp" else sender
        self._status_callback = settings.public_base_url.rstrip("/") + TWILIO_STATUS_PATH
        self._api_base_url = api_base_url
        self._timeout = timeout
        self._client: Any = None
        self._http: Any = None

    def _twilio(self) -> Any:
        # Built on first use: aiohttp wants its session created inside the running loop.
        if self._client is None:
            from twilio.rest import Client

            self._http = _twilio_http_client(self._api_base_url, self._timeout)
            self._client = Client(
                self._account_sid,
                self._auth_token,
                account_sid=self._account_sid,
                http_client=self._http,
            )
        return self._client

    def status_callback(self, message: OutboundMessage) -> str:
        """`PUBLIC_BASE_URL/webhooks/twilio/status?outbox=<id>`: the callback names its row."""
        if message.id is None:
            return self._status_callback
        return f"{self._status_callback}?{TWILIO_STATUS_OUTBOX_PARAM}={int(message.id)}"

    async def send(self, message: OutboundMessage, *, use_template: bool = False) -> SendResult:
        """Create the message at Twilio; 429/5xx/network → retry, other 4xx → permanent."""
        import aiohttp
        from twilio.base.exceptions import TwilioRestException, TwilioServiceException

        to = _whatsapp(message.to) if self.channel == "whatsapp" else message.to
        fields: dict[str, Any] = {
            "to": to,
            "from_": self._from,
            "status_callback": self.status_callback(message),
        }
        if use_template:
            if not message.template:
                raise PermanentSendError("a WhatsApp template is required and none is set")
            fields["content_sid"] = message.template
            if message.template_variables:
                fields["content_variables"] = message.template_variables
        else:
            if len(message.body) > TWILIO_MAX_BODY:
                raise PermanentSendError(f"body longer than {TWILIO_MAX_BODY} characters")
            fields["body"] = message.body
        if self.channel == "sms" and log.isEnabledFor(logging.DEBUG):
            cost = measure(message.body)
            log.debug(
                "sms %s: %s, %d characters, %d segment(s)",
                message.id,
                cost.encoding,
                cost.characters,
                cost.segments,
            )
        _twilio_retry_after.set(None)
        try:
            created = await self._twilio().messages.create_async(**fields)
        except (TwilioRestException, TwilioServiceException) as exc:
            status = int(getattr(exc, "status", 0) or 0)
            code = getattr(exc, "code", None)
            reason = f"twilio {status} error {code}"
            if status == 429:
                # Pacing, not a failure of this message: the channel waits, and the message
                # keeps its attempts however long Twilio throttles the account.
                wait = _twilio_retry_after.get()
                raise RetryableSendError(
                    reason, TWILIO_THROTTLE_SECONDS if wait is None else wait
                ) from None
            if status >= 500 or status in _TWILIO_ACCOUNT_STATUSES:
                if status in _TWILIO_ACCOUNT_STATUSES:
                    log.error("twilio refused our credentials (%s): check the account", status)
                raise RetryableSendError(reason) from None
            raise PermanentSendError(reason, code) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RetryableSendError(f"twilio unreachable: {type(exc).__name__}") from None
        return SendResult(provider_id=str(created.sid))

    async def aclose(self) -> None:
        """Close the aiohttp session."""
        if self._http is not None:
            await self._http.close()
            self._http = None
            self._client = None


def _whatsapp(address: str) -> str:
    return address if address.startswith("whatsapp:") else f"whatsapp:{address}"


# -- Telegram --------------------------------------------------------------------------------


class _Pacer:
    """Spaces sends out to at most `per_second` (Telegram: ~30 messages/s per bot)."""

    def __init__(self, per_second: float) -> None:
        self._interval = 1.0 / per_second
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            loop = asyncio.get_running_loop()
            delay = self._next - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._next = max(loop.time(), self._next) + self._interval


# PTB 22 warns, whenever it builds or reads a RetryAfter, that its int will become a timedelta;
# Rabta reads both (below), so the warning is noise in the API's and the worker's logs.
warnings.filterwarnings(
    "ignore", message=r".*`retry_after` will be of type `datetime.timedelta`", category=Warning
)


def retry_after_seconds(exc: Any) -> float:
    """A Telegram `RetryAfter`'s wait in seconds: PTB 22 warns, reading it, that the int will
    become a timedelta; both are handled here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wait = exc.retry_after
    return wait.total_seconds() if isinstance(wait, dt.timedelta) else float(wait)


class TelegramSender:
    """Telegram through python-telegram-bot's `Bot.send_message`."""

    channel = "telegram"

    def __init__(
        self,
        settings: Settings,
        *,
        per_second: float = 25.0,
        connections: int = 16,
        timeout: float = SEND_TIMEOUT_SECONDS,
    ) -> None:
        if not settings.telegram_bot_token:
            raise ValueError("TELEGRAM_BOT_TOKEN is needed to send on Telegram")
        self._token = settings.telegram_bot_token
        self._base_url = settings.telegram_api_base_url or "https://api.telegram.org/bot"
        self._connections = connections
        self._timeout = timeout
        self._pacer = _Pacer(per_second)
        self._bot: Any = None

    def _telegram(self) -> Any:
        if self._bot is None:
            from telegram import Bot
            from telegram.request import HTTPXRequest

            # PTB's default pool holds one connection, which would serialise concurrent sends.
            request = HTTPXRequest(
                connection_pool_size=self._connections,
                read_timeout=self._timeout,
                write_timeout=self._timeout,
                connect_timeout=5.0,
                pool_timeout=self._timeout,
            )
            self._bot = Bot(self._token, base_url=self._base_url, request=request)
        return self._bot

    async def send(self, message: OutboundMessage, *, use_template: bool = False) -> SendResult:
        """Send the text to the chat; RetryAfter → retry then, Forbidden → permanent."""
        from telegram.error import (
            BadRequest,
            ChatMigrated,
            Forbidden,
            InvalidToken,
            NetworkError,
            RetryAfter,
            TelegramError,
        )

        try:
            chat_id = int(message.to)
        except ValueError:
            raise PermanentSendError("a Telegram chat id is a number") from None
        await self._pacer.wait()
        try:
            sent = await self._telegram().send_message(chat_id=chat_id, text=message.body)
        except RetryAfter as exc:
            raise RetryableSendError("telegram flood control", retry_after_seconds(exc)) from None
        except Forbidden:
            raise PermanentSendError(
                "telegram: the user blocked the bot", TELEGRAM_BLOCKED
            ) from None
        except (BadRequest, ChatMigrated) as exc:
            # BadRequest is a NetworkError subclass in PTB: it must be caught first.
            raise PermanentSendError(f"telegram refused: {exc.message}", "bad_request") from None
        except InvalidToken:
            log.error("telegram refused the bot token: check TELEGRAM_BOT_TOKEN")
            raise RetryableSendError("telegram: invalid token") from None
        except NetworkError as exc:  # TimedOut included
            raise RetryableSendError(f"telegram unreachable: {type(exc).__name__}") from None
        except TelegramError as exc:
            raise PermanentSendError(f"telegram error: {exc.message}") from None
        return SendResult(provider_id=f"tg-{sent.chat.id}-{sent.message_id}")

    async def aclose(self) -> None:
        """Close the bot's HTTP pool."""
        if self._bot is not None:
            with contextlib.suppress(Exception):
                await self._bot.shutdown()
            self._bot = None


# -- wiring ----------------------------------------------------------------------------------


def build_senders(settings: Settings) -> Senders:
    """Console for every channel in console mode, else Twilio; Telegram when a token is set."""
    senders: Senders = {}
    if settings.outbound_mode == "console":
        console = ConsoleSender(settings.console_outbox)
        for channel in ("sms", "whatsapp", "telegram"):
            senders[channel] = console
    else:
        senders["sms"] = TwilioSender(settings, "sms")
        if settings.twilio_whatsapp_from or settings.twilio_from:
            senders["whatsapp"] = TwilioSender(settings, "whatsapp")
    if settings.telegram_bot_token:
        senders["telegram"] = TelegramSender(settings)
    return senders
