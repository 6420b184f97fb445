"""Which template answers a reply: the channel's own file when there is one, else the shared one,
chosen once per reply and channel (Jinja does not remember names it did not find)."""

from __future__ import annotations

import shutil
from pathlib import Path

from api.programmes import get_programmes
from bot.channels.base import Reply
from bot.render import TEMPLATES_DIR, Renderer


def renderer(templates_dir: Path = TEMPLATES_DIR, *, auto_reload: bool = False) -> Renderer:
    programmes = get_programmes()
    return Renderer(
        brand=programmes.brand,
        programme_name=programmes.name,
        templates_dir=templates_dir,
        auto_reload=auto_reload,
    )


def text(r: Renderer, name: str, channel: str, language: str = "en") -> str:
    return r.render([Reply(name)], language=language, channel=channel).text


def test_the_channels_own_file_answers_and_the_choice_is_kept():
    r = renderer()
    sms = text(r, "language/menu", "sms")
    whatsapp = text(r, "language/menu", "whatsapp")
    assert sms.startswith("Send LANG with a code")  # language/menu.sms.j2
    assert sms != whatsapp  # language/menu.j2
    urdu = text(renderer(), "language/menu", "sms", "ur")
    for _ in range(3):  # later renders take the kept choice and say the same
        assert text(r, "language/menu", "sms") == sms
        assert text(r, "language/menu", "whatsapp") == whatsapp
        assert text(r, "language/menu", "sms", "ur") == urdu


def test_a_channel_file_added_while_running_is_used_in_development(tmp_path):
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, templates)
    dev, production = renderer(templates, auto_reload=True), renderer(templates)
    before = text(dev, "help/menu", "ussd")
    assert text(production, "help/menu", "ussd") == before
    (templates / "messages" / "help" / "menu.ussd.j2").write_text("USSD help")
    assert text(dev, "help/menu", "ussd") == "USSD help"
    # Production keeps what it chose at its first render: template files ship with a release.
    assert text(production, "help/menu", "ussd") == before
