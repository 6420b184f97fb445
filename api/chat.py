"""`rabta chat`: a terminal conversation that goes through the real webhook, signed like Twilio."""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
from xml.etree import ElementTree

import httpx
from fastapi import FastAPI
from rich.console import Console
from twilio.request_validator import RequestValidator

from api.identity import InvalidPhone, mask_phone, normalise_phone
from api.main import create_app
from api.migrate import upgrade_async
from api.outbox.senders import build_senders
from api.outbox.service import deliver_due
from api.settings import get_settings

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
    if channel == "ussd":
        return await run_ussd_chat(phone=phone, console=console)
    settings = get_settings()
    try:
        phone = normalise_phone(phone)
    except InvalidPhone:
        console.print(f"[red]{phone!r} is not a phone number.[/red]")
        return 2
    await upgrade_async(settings.database_url)
    app = create_app(settings)
    path = "/webhooks/twilio/messaging"
    validator = RequestValidator(settings.twilio_auth_token) if settings.twilio_auth_token else None
    interactive = sys.stdin.isatty()
    seen: dict[str, int] = {}
    if settings.console_outbox.exists():
        seen["offset"] = settings.console_outbox.stat().st_size  # show only this chat's messages
    console.print(f"[dim]{channel} as {phone}; an empty line or Ctrl-D ends.[/dim]")
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=settings.public_base_url
        ) as client,
    ):
        while True:
            try:
                line = await asyncio.to_thread(input, "> " if interactive else "")
            except EOFError:
                break
            if not interactive:
                console.print(f"[bold]> {line}[/bold]")
            if not line.strip():
                break
            sid = f"SM{secrets.token_hex(16)}"
            form = twilio_form(channel=channel, phone=phone, body=line, sid=sid)
            headers = {}
            if validator is not None:
                url = settings.public_base_url.rstrip("/") + path
                headers["X-Twilio-Signature"] = validator.compute_signature(url, form)
            response = await client.post(path, data=form, headers=headers)
            if response.status_code != 200:
                console.print(f"[red]{response.status_code}[/red] {response.text}")
                continue
            twiml = ElementTree.fromstring(response.text)  # noqa: S314 - our own TwiML
            for message in twiml.iter("Message"):
                console.print(f"[cyan]{message.text or ''}[/cyan]", soft_wrap=True)
            await _show_outbound(app, console, seen)
    return 0


async def run_ussd_chat(*, phone: str, console: Console) -> int:
    """Dial the real `/webhooks/ussd` as Africa's Talking would: each line is one input, `text`
    accumulates with `*`, every screen is printed, and an `END` dials a new session."""
    settings = get_settings()
    try:
        phone = normalise_phone(phone)
    except InvalidPhone:
        console.print(f"[red]{phone!r} is not a phone number.[/red]")
        return 2
    await upgrade_async(settings.database_url)
    app = create_app(settings)
    interactive = sys.stdin.isatty()
    seen: dict[str, int] = {}
    if settings.console_outbox.exists():
        seen["offset"] = settings.console_outbox.stat().st_size  # show only this chat's messages
    console.print(f"[dim]ussd *262# as {phone}; an empty line or Ctrl-D ends.[/dim]")
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=settings.public_base_url
        ) as client,
    ):

        async def hit(session_id: str, text: str) -> str:
            form = {
                "sessionId": session_id,
                "serviceCode": "*262#",
                "phoneNumber": phone,
                "networkCode": "41001",
                "text": text,
            }
            response = await client.post("/webhooks/ussd", data=form)
            if response.status_code != 200:
                console.print(f"[red]{response.status_code}[/red] {response.text}", markup=False)
                return "END"
            console.print(
                response.text, style="cyan", markup=False, highlight=False, soft_wrap=True
            )
            await _show_outbound(app, console, seen)
            return response.text

        session_id, text = f"ATUid_{secrets.token_hex(16)}", ""
        await hit(session_id, text)
        while True:
            try:
                line = await asyncio.to_thread(input, "> " if interactive else "")
            except EOFError:
                break
            if not interactive:
                console.print(f"> {line}", style="bold", markup=False)
            if not line.strip():
                break
            text = line if not text else f"{text}*{line}"
            if (await hit(session_id, text)).startswith("END"):
                console.print("[dim](session ended; dialling again)[/dim]")
                session_id, text = f"ATUid_{secrets.token_hex(16)}", ""
                await hit(session_id, text)
    return 0


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
        console.print(f"[magenta]  ({message['channel']} to {to}) {message['body']}[/magenta]")
