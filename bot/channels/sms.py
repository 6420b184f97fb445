"""SMS: terse, keyword-driven, every character paid for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

#: The most SMS units of a payment place the schedule shows, a longer one cut to end in `..`
#: (the registry takes 120 characters): the schedule fits SPEC §2's segments with this much in
#: every language (bot/i18n_report.py renders it with a place of 120). Channels that bill no
#: segments (WhatsApp, Telegram) show the place whole; a USSD screen cuts itself.
PLACE_UNITS: Final = 60


class SmsChannel:
    name = "sms"
    max_chars: int | None = None

    def compose(self, texts: Sequence[str], options: Sequence[tuple[str, str]]) -> str:
        """One SMS: replies on their own lines; options are already spelled out as keywords."""
        return "\n".join(t for t in texts if t)


sms = SmsChannel()
