"""`rabta chat`: a terminal conversation that goes through the real webhook, signed like Twilio."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from xml.etree import ElementTree

import httpx
from fastapi import FastAPI
from rich.console import Console
from rich.markup import escape
from twilio.request_validator import RequestValidator

from api.identity import InvalidPhone, mask_phone, normalise_phone
from api.main import create_app
from api.migrate import upgrade_async
from api.outbox.senders import build_senders
from api.outbox.service import deliver_due
from api.settings import Settings, get_settings

SERVICE_NUMBER = "+15005550006"


def twilio_form(*, channel: str, phone: str, body: str, sid: str) -> dict[str, str]:
    """The fields Twilio posts for an inbound SMS or WhatsApp message."""
    prefix = "whatsapp:" if channel == "whatsapp" else ""
    form = {
        "MessageSid": sid,
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": prefix + phone,
        "To": prefix + SERVICE_NUMBER,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }
    if channel == "whatsapp":
        form["WaId"] = phone.lstrip("+")
        form["ProfileName"] = "Rabta chat"
    return form


async def run_chat(*, channel: str, phone: str, console: Console) -> int:
    """Read lines from the terminal, post each as an inbound message, print the reply."""
    if channel == "telegram":
        # Update JSON to the real Telegram webhook; replies land in a local fake Bot API.
        from api.telegram_cli import run_telegram_chat

        return await run_telegram_chat(phone=phone, console=console)
    settings = get_settings()
    try:
        phone = normalise_phone(phone)
    except InvalidPhone:
        console.print(f"[red]{escape(repr(phone))} is not a phone number.[/red]")
        return 2
    await upgrade_async(settings.database_url)
    app = create_app(settings)
    seen = outbox_offset(settings)
    banner = f"ussd *262# as {phone}" if channel == "ussd" else f"{channel} as {phone}"
    console.print(f"[dim]{banner}; an empty line or Ctrl-D ends.[/dim]")
    async with in_process_client(app, settings.public_base_url) as client:
        chat = _Chat(app, client, console, phone, sys.stdin.isatty(), seen)
        if channel == "ussd":
            await _dial_ussd(chat)
        else:
            await _text_twilio(chat, channel=channel, settings=settings)
    return 0


@dataclass(frozen=True)
class _Chat:
    """An SMS, WhatsApp or USSD chat under way: the phone it is typed from, the client that posts
    to the app's webhooks, and how much of the console outbox the transcript has shown."""

    app: FastAPI
    client: httpx.AsyncClient
    console: Console
    phone: str
    interactive: bool
    seen: dict[str, int]

    def lines(self) -> AsyncIterator[str]:
        """What is typed or piped into this chat; see `typed_lines`."""
        return typed_lines(
            terminal_lines(self.interactive), interactive=self.interactive, echo=self.echo
        )

    def echo(self, line: str) -> None:
        """A piped line, shown as typed: plain text, never read as markup (`[/x]` is input)."""
        self.console.print(f"> {line}", style="bold", markup=False, highlight=False)

    async def show_outbound(self) -> None:
        await _show_outbound(self.app, self.console, self.seen)


async def _text_twilio(chat: _Chat, *, channel: str, settings: Settings) -> None:
    """Post each line to the real Twilio webhook as an inbound SMS or WhatsApp message (signed
    the way Twilio signs when a token is set, or the webhook refuses it) and print the TwiML."""
    path = "/webhooks/twilio/messaging"
    validator = RequestValidator(settings.twilio_auth_token) if settings.twilio_auth_token else None
    console = chat.console
    async for line in chat.lines():
        sid = f"SM{secrets.token_hex(16)}"
        form = twilio_form(channel=channel, phone=chat.phone, body=line, sid=sid)
        headers = {}
        if validator is not None:
            url = settings.public_base_url.rstrip("/") + path
            headers["X-Twilio-Signature"] = validator.compute_signature(url, form)
        response = await chat.client.post(path, data=form, headers=headers)
        if response.status_code != 200:
            console.print(f"[red]{response.status_code}[/red] {escape(response.text)}")
            continue
        twiml = ElementTree.fromstring(response.text)  # noqa: S314 - our own TwiML
        for message in twiml.iter("Message"):
            # The reply quotes what was typed (a complaint's description): text, never markup.
            console.print(message.text or "", style="cyan", markup=False, soft_wrap=True)
        await chat.show_outbound()


async def _dial_ussd(chat: _Chat) -> None:
    """Dial the real `/webhooks/ussd` as Africa's Talking would: each line is one input, `text`
    accumulates with `*`, every screen is printed, and an `END` dials a new session."""
    console = chat.console

    async def hit(session_id: str, text: str) -> str:
        form = {
            "sessionId": session_id,
            "serviceCode": "*262#",
            "phoneNumber": chat.phone,
            "networkCode": "41001",
            "text": text,
        }
        response = await chat.client.post("/webhooks/ussd", data=form)
        if response.status_code != 200:
            console.print(f"[red]{response.status_code}[/red] {response.text}", markup=False)
            return "END"
        console.print(response.text, style="cyan", markup=False, highlight=False, soft_wrap=True)
        await chat.show_outbound()
        return response.text

    session_id, text = f"ATUid_{secrets.token_hex(16)}", ""
    await hit(session_id, text)
    async for line in chat.lines():
        text = line if not text else f"{text}*{line}"
        if (await hit(session_id, text)).startswith("END"):
            console.print("[dim](session ended; dialling again)[/dim]")
            session_id, text = f"ATUid_{secrets.token_hex(16)}", ""
            await hit(session_id, text)


# -- what every chat shares, Telegram's (api.telegram_cli) too; tests start apps this way too --


def outbox_offset(settings: Settings) -> dict[str, int]:
    """Where this chat's messages will start in the console outbox, so that the transcript shows
    only what this chat queued, not what earlier runs left there."""
    seen: dict[str, int] = {}
    if settings.console_outbox.exists():
        seen["offset"] = settings.console_outbox.stat().st_size
    return seen


@contextlib.asynccontextmanager
async def in_process_client(app: FastAPI, base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Start the app as `rabta serve` would (its lifespan opens the pools and starts the outbox
    worker) and yield a client that posts to its webhooks in this process, as a gateway would."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url) as client,
    ):
        yield client


def terminal_lines(interactive: bool) -> Iterator[str]:
    """Lines typed at the terminal (after a `> ` prompt) or piped in, until the end of input."""
    while True:
        try:
            yield input("> " if interactive else "")
        except EOFError:
            return


async def typed_lines(
    source: Iterator[str], *, interactive: bool, echo: Callable[[str], object]
) -> AsyncIterator[str]:
    """The lines of `source` up to an empty one or the end. Each is read in a thread, because the
    app (and Telegram's fake Bot API) run on this event loop. A line that was not typed at a
    terminal is shown with `echo`, so that a piped transcript reads like a typed one; each
    channel echoes in the style of the rest of its transcript."""
    while True:
        line = await _next_line(source)
        if line is None:
            return
        if not interactive:
            echo(line)
        if not line.strip():
            return
        yield line


async def _next_line(source: Iterator[str]) -> str | None:
    """The next line of `source` (None at its end), read in a thread of its own that the process
    does not wait for: Ctrl-C while `input()` waits ends the chat at once, where a thread of the
    loop's pool would be waited for at exit, until Enter."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str | None] = loop.create_future()

    def settle(line: str | None, error: BaseException | None) -> None:
        if future.done():  # the chat was interrupted meanwhile
            return
        if error is None:
            future.set_result(line)
        else:
            future.set_exception(error)

    def read() -> None:
        line, error = None, None
        try:
            line = next(source, None)
        except BaseException as exc:  # handed to the chat, which is waiting for this line
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is gone: the chat has ended
            loop.call_soon_threadsafe(settle, line, error)

    threading.Thread(target=read, name="rabta-chat-input", daemon=True).start()
    return await future


async def _show_outbound(app: FastAPI, console: Console, seen: dict[str, int]) -> None:
    """Deliver what the reply queued (a code to another phone, say) and show it, as the console
    sender writes it."""
    runtime = app.state.runtime
    if runtime.settings.outbound_mode != "console":
        return
    await deliver_due(runtime.db, build_senders(runtime.settings), worker_id="chat")
    path = runtime.settings.console_outbox
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fp:
        fp.seek(seen.get("offset", 0))
        lines = fp.readlines()
        seen["offset"] = fp.tell()
    for line in lines:
        message = json.loads(line)
        to = mask_phone(message["to"]) if message["to"].startswith("+") else message["to"]
        shown = f"  ({message['channel']} to {to}) {message['body']}"
        console.print(shown, style="magenta", markup=False, soft_wrap=True)
