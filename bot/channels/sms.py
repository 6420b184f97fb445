"""SMS: terse, keyword-driven, every character paid for."""

from __future__ import annotations

from collections.abc import Sequence


class SmsChannel:
    name = "sms"
    max_chars: int | None = None

    def compose(self, texts: Sequence[str], options: Sequence[tuple[str, str]]) -> str:
        """One SMS: replies on their own lines; options are already spelled out as keywords."""
        return "\n".join(t for t in texts if t)


sms = SmsChannel()
