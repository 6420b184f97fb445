"""WhatsApp (through Twilio): the SMS conversation with numbered menus and light formatting."""

from __future__ import annotations

from collections.abc import Sequence


class WhatsAppChannel:
    name = "whatsapp"
    max_chars: int | None = 1600  # Twilio's body limit

    def compose(self, texts: Sequence[str], options: Sequence[tuple[str, str]]) -> str:
        """Replies as paragraphs, then the options as a numbered list the user answers by number."""
        body = "\n\n".join(t for t in texts if t)
        if options:
            menu = "\n".join(f"*{i}.* {label}" for i, (label, _) in enumerate(options, 1))
            body = f"{body}\n\n{menu}" if body else menu
        return body


whatsapp = WhatsAppChannel()
