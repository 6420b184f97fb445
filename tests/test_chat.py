"""`rabta chat` on SMS, WhatsApp and USSD: lines piped in go through the real webhooks, and the
transcript shows each line, the bot's reply and what it queued for other phones. (Telegram's
chat is in tests/telegram/test_cli.py.)"""

from __future__ import annotations

import io
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from api.chat import run_chat
from api.settings import get_settings
from tests.conftest import (
    ELIGIBLE_PHONE,
    ELIGIBLE_WIFE,
    NOT_ELIGIBLE,
    NOT_ELIGIBLE_PHONE,
    UNDER_REVIEW_PHONE,
)


async def chat(
    monkeypatch: pytest.MonkeyPatch, *lines: str, channel: str, phone: str
) -> tuple[int, str]:
    """Run `rabta chat` with `lines` piped to it; its exit code and transcript."""
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(f"{line}\n" for line in lines)))
    out = io.StringIO()
    code = await run_chat(channel=channel, phone=phone, console=Console(file=out, width=300))
    return code, out.getvalue()


async def test_sms_chat_shows_replies_and_the_code_sent_to_another_phone(
    settings, db, redis, registry, monkeypatch
):
    code, transcript = await chat(
        monkeypatch,
        "LANG EN",
        NOT_ELIGIBLE,
        f"PAY {ELIGIBLE_WIFE}",
        "",
        "HELP",
        channel="sms",
        phone=NOT_ELIGIBLE_PHONE,
    )
    assert code == 0, transcript
    assert transcript.startswith(f"sms as {NOT_ELIGIBLE_PHONE}; an empty line or Ctrl-D ends.")
    assert "> LANG EN\nLanguage set to English. Send HELP for the menu.\n" in transcript
    assert f"> {NOT_ELIGIBLE}\nCNIC 42101-*******-3 is not eligible" in transcript
    # The code goes to the wife's registered mobile; the console sender's copy is shown.
    assert "(sms to +92300****567) BISP code: " in transcript
    assert "> HELP" not in transcript  # the empty line ended the chat


async def test_whatsapp_chat_signs_like_twilio(settings, db, redis, registry, monkeypatch):
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "0123456789abcdef0123456789abcdef")
    get_settings.cache_clear()
    code, transcript = await chat(
        monkeypatch, "LANG EN", NOT_ELIGIBLE, channel="whatsapp", phone="0345-1112233"
    )
    assert code == 0, transcript
    assert transcript.startswith(f"whatsapp as {NOT_ELIGIBLE_PHONE};")
    assert "Language set to English" in transcript
    assert "is not eligible" in transcript
    assert "403" not in transcript


async def test_ussd_chat_accumulates_input_and_dials_again_after_end(
    settings, db, redis, registry, monkeypatch
):
    code, transcript = await chat(
        monkeypatch, "1", "2", "1", "", "1", channel="ussd", phone=UNDER_REVIEW_PHONE
    )
    assert code == 0, transcript
    assert transcript.startswith(f"ussd *262# as {UNDER_REVIEW_PHONE}; an empty line or Ctrl-D")
    assert transcript.count("CON Zaban:") == 1
    assert "> 1\nCON BISP menu:\n1 Check eligibility\n" in transcript
    assert "> 2\nEND " in transcript
    assert "(session ended; dialling again)\nCON BISP menu:" in transcript


@pytest.mark.parametrize("channel", ["sms", "ussd"])
async def test_chat_refuses_a_phone_that_is_not_one(settings, db, redis, monkeypatch, channel):
    code, transcript = await chat(monkeypatch, "HELP", channel=channel, phone="not a phone")
    assert code == 2
    assert transcript == "'not a phone' is not a phone number.\n"


async def test_chat_ends_at_the_end_of_input(settings, db, redis, registry, monkeypatch):
    code, transcript = await chat(monkeypatch, "LANG EN", channel="sms", phone=ELIGIBLE_PHONE)
    assert code == 0, transcript
    assert transcript.rstrip().endswith("Language set to English. Send HELP for the menu.")


@pytest.mark.parametrize("channel", ["sms", "ussd"])
async def test_piped_lines_are_echoed_as_typed_not_read_as_markup(
    settings, db, redis, registry, monkeypatch, channel
):
    code, transcript = await chat(
        monkeypatch, "[/x]", "[bold]x[/bold]", channel=channel, phone=NOT_ELIGIBLE_PHONE
    )
    assert code == 0, transcript
    assert "> [/x]\n" in transcript and "> [bold]x[/bold]\n" in transcript


async def test_a_reply_quoting_markup_is_shown_as_text(settings, db, redis, registry, monkeypatch):
    """The confirmation quotes the complaint's description: `[/x]` there is text, not a closing
    tag that would stop the chat with a traceback."""
    code, transcript = await chat(
        monkeypatch,
        "LANG EN",
        "COMPLAINT [/x] [bold]money[/bold] never came",
        "1",
        "2",
        channel="sms",
        phone=NOT_ELIGIBLE_PHONE,
    )
    assert code == 0, transcript
    assert 'payment not received, "[/x] [bold]money[/bold] never came". Reply 1' in transcript


async def test_a_phone_that_looks_like_markup_is_refused_as_typed(settings, db, redis, monkeypatch):
    code, transcript = await chat(monkeypatch, "HELP", channel="sms", phone="[/x]")
    assert code == 2
    assert transcript == "'[/x]' is not a phone number.\n"


def _read_until(fd: int, wanted: bytes, *, seconds: float) -> bytes:
    """What the terminal shows until `wanted` appears (or the time is up)."""
    shown, deadline = b"", time.monotonic() + seconds
    while wanted not in shown and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            try:
                shown += os.read(fd, 65536)
            except OSError:  # the chat has exited and closed its end
                break
    return shown


@pytest.mark.parametrize("channel", ["sms", "telegram"])
def test_ctrl_c_at_the_prompt_ends_the_chat(settings, db, channel):
    """Ctrl-C while the chat waits for a line typed at a terminal ends it at once; it used to
    wait, stuck, for Enter."""
    terminal, side = pty.openpty()
    chat = subprocess.Popen(
        [str(Path(sys.executable).parent / "rabta"), "chat", "--channel", channel],
        stdin=side,
        stdout=side,
        stderr=side,
        env=os.environ.copy(),
    )
    os.close(side)
    try:
        shown = _read_until(terminal, b"> ", seconds=60)
        assert b"an empty line or Ctrl-D ends" in shown, shown
        chat.send_signal(signal.SIGINT)
        assert chat.wait(timeout=20) == 130
    finally:
        if chat.poll() is None:
            chat.kill()
            chat.wait()
        os.close(terminal)
