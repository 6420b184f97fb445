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


#: Languages written in Latin letters: GSM-7 and the tighter budget.
LATIN_LANGUAGES: tuple[str, ...] = ("en", "ur_Latn")

#: SPEC §2: answers, help, prompts and confirmations: one segment in Latin script, two in Arabic.
SMS_ONE_SEGMENT: list[str] = [
    "eligibility/eligible",
    "eligibility/not_eligible",
    "eligibility/not_found",
    "eligibility/under_review",
    "errors/not_cnic",
    "errors/try_later",
    "errors/rate_limited",
    "errors/text_only",
    "errors/text_only_answer",
    "help/menu",
    "help/not_understood",
    "language/changed",
    "language/menu",
    "payments/none",
    "payments/ask_cnic",
    "verify/code_sent",
    "verify/wait",
    "verify/too_many",
    "verify/no_mobile",
    "verify/choose_person",
    "verify/wrong",
    "verify/exhausted",
    "verify/expired",
    "verify/verified",
    "otp/code",
    "subscription/started",
    "subscription/stopped",
    "grievance/ask_category",
    "grievance/ask_category_again",
    "grievance/ask_cnic",
    "grievance/ask_description",
    "grievance/ask_ticket",
    "grievance/cancelled",
    "grievance/confirm",
    "grievance/confirm_again",
    "grievance/filed",
    "grievance/list",
    "grievance/none",
    "grievance/not_found",
]
#: Payment schedules and grievance statuses: two segments in Latin script, three in Arabic. A
#: grievance update is the status pushed when it changes, with the agent's note (80 characters).
SMS_TWO_SEGMENTS: list[str] = ["payments/schedule", "grievance/status", "grievance/update"]

#: Every SMS message the report covers, in its order.
SMS_MESSAGES: list[str] = SMS_ONE_SEGMENT + SMS_TWO_SEGMENTS


def sms_budget(name: str, language: str) -> int:
    """The most segments the SMS `name` may take in `language` (SPEC §2)."""
    latin = 2 if name in SMS_TWO_SEGMENTS else 1
    return latin if language in LATIN_LANGUAGES else latin + 1
