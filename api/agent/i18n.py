"""The console's languages: English and Urdu (right to left), from the gettext domain `agent`.

The catalogs are `locales/agent/<lang>/LC_MESSAGES/agent.po`, compiled by
`make compile-agent-messages`; when a compiled `.mo` is missing (a fresh checkout running the
tests) the `.po` is read directly, so the console never shows untranslated Urdu pages.
"""

from __future__ import annotations

import datetime as dt
import io
from functools import cache
from pathlib import Path

from babel.dates import format_date as babel_format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from starlette.requests import Request

from api.db import utc
from api.settings import PROJECT_ROOT
from bot import formatting

DOMAIN = "agent"
LOCALES_DIR = PROJECT_ROOT / "locales" / "agent"
#: The console's languages; the first is the default.
LANGUAGES: tuple[str, ...] = ("en", "ur")
RTL: frozenset[str] = frozenset({"ur"})
LANGUAGE_COOKIE = "rabta_agent_lang"
LANGUAGE_NAMES = {"en": "English", "ur": "اردو"}

#: Pakistan Standard Time (no daylight saving since 2009): what the call center's clocks show.
PKT = dt.timezone(dt.timedelta(hours=5), "PKT")
#: The same zone by its IANA name, for the database to count days in.
PKT_ZONE = "Asia/Karachi"


def pakistan_today(now: dt.datetime | None = None) -> dt.date:
    """The date on the call centre's calendar at `now` (default: this moment)."""
    return utc(now).astimezone(PKT).date() if now else dt.datetime.now(PKT).date()


def N_(message: str) -> str:
    """Mark a string for the catalog; it is translated where it is shown."""
    return message


@cache
def translations(language: str, locales_dir: Path = LOCALES_DIR) -> NullTranslations:
    """The catalog of `language`: the compiled one, else the `.po` read and compiled in memory."""
    folder = locales_dir / language / "LC_MESSAGES"
    mo, po = folder / f"{DOMAIN}.mo", folder / f"{DOMAIN}.po"
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as fp:
            return Translations(fp, domain=DOMAIN)
    if not po.exists():
        if language == LANGUAGES[0]:
            return NullTranslations()
        raise FileNotFoundError(f"no agent catalog for {language}: {po}")
    with po.open("rb") as fp:
        catalog = read_po(fp, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def choose_language(request: Request) -> str:
    """The language the agent picked (a cookie), else the browser's preference, else English."""
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    for part in request.headers.get("accept-language", "").split(","):
        code = part.split(";", 1)[0].strip().lower()
        if code.startswith("ur"):
            return "ur"
        if code.startswith("en"):
            return "en"
    return LANGUAGES[0]


def gettext(language: str, message: str, **variables: object) -> str:
    """`message` in `language`, with %(name)s placeholders filled."""
    text = translations(language).gettext(message)
    return text % variables if variables else text


# -- dates and numbers ---------------------------------------------------------------------


def as_pkt(moment: dt.datetime) -> dt.datetime:
    """A stored UTC moment (SQLite hands them back naive) in Pakistan time."""
    return utc(moment).astimezone(PKT)


def format_moment(moment: dt.datetime | None, language: str) -> str:
    if moment is None:
        return ""
    local = as_pkt(moment)
    return f"{formatting.format_date(local.date(), language)} {local:%H:%M}"


def format_day(day: dt.date | None, language: str) -> str:
    return formatting.format_date(day, language) if day else ""


def format_short_day(day: dt.date, language: str) -> str:
    """`23 Nov`: a day on a chart's axis."""
    text = babel_format_date(day, "d MMM", locale=formatting.babel_locale(language))
    return formatting.native_digits(text, language)


def format_amount(pkr: int, language: str) -> str:
    return formatting.format_amount(pkr, language)


def format_number(value: int, language: str) -> str:
    return formatting.format_number(value, language)


# -- labels of stored values, translated where they are shown -------------------------------

LABELS: dict[str, dict[str, str]] = {
    "category": {
        "payment_not_received": N_("Payment not received"),
        "deduction_by_agent": N_("Money deducted by agent or retailer"),
        "biometric_failure": N_("Biometric verification failed"),
        "eligibility_dispute": N_("Eligibility dispute"),
        "data_correction": N_("Data or CNIC correction"),
        "other": N_("Other"),
    },
    "status": {
        "open": N_("Open"),
        "in_progress": N_("In progress"),
        "escalated": N_("Escalated"),
        "resolved": N_("Resolved"),
        "rejected": N_("Rejected"),
    },
    "eligibility": {
        "eligible": N_("Eligible"),
        "not_eligible": N_("Not eligible"),
        "not_found": N_("Not found in the registry"),
        "under_review": N_("Under review"),
    },
    "payment_status": {
        "scheduled": N_("Scheduled"),
        "ready": N_("Ready to collect"),
        "collected": N_("Collected"),
        "failed": N_("Failed"),
        "withheld": N_("Withheld"),
    },
    "mode": {
        "bank": N_("Bank account"),
        "campsite": N_("Campsite"),
        "retailer": N_("Retailer / agent"),
    },
    "enrollment": {
        "active": N_("Active"),
        "suspended": N_("Suspended"),
        "exited": N_("Exited"),
        "pending": N_("Pending"),
    },
    "relation": {
        "head": N_("Head of household"),
        "spouse": N_("Spouse"),
        "son": N_("Son"),
        "daughter": N_("Daughter"),
        "child": N_("Child"),
        "parent": N_("Parent"),
        "other": N_("Other relative"),
    },
    "gender": {"M": N_("Male"), "F": N_("Female"), "X": N_("Other")},
    "role": {
        "agent": N_("Agent"),
        "supervisor": N_("Supervisor"),
        "admin": N_("Admin"),
    },
    "channel": {
        "sms": N_("SMS"),
        "whatsapp": N_("WhatsApp"),
        "ussd": N_("USSD"),
        "telegram": N_("Telegram"),
        "api": N_("Partner API"),
        "agent": N_("Agent console"),
    },
    "language": {
        "en": N_("English"),
        "ur": N_("Urdu"),
        "ur_Latn": N_("Roman Urdu"),
        "sd": N_("Sindhi"),
        "ps": N_("Pashto"),
        "pa_Arab": N_("Punjabi"),
    },
    "event": {
        "filed": N_("Filed"),
        "status_changed": N_("Status changed"),
        "escalated": N_("Escalated"),
        "reopened": N_("Reopened"),
        "note": N_("Note to the caller"),
        "internal_note": N_("Internal note"),
        "assigned": N_("Assigned"),
    },
    "action": {
        "login": N_("Signed in"),
        "login_failed": N_("Sign-in refused"),
        "logout": N_("Signed out"),
        "lookup": N_("CNIC search"),
        "send_code": N_("Code sent"),
        "verify": N_("Caller verified"),
        "verify_failed": N_("Wrong code"),
        "view": N_("Record viewed"),
        "override": N_("Override"),
        "override_request": N_("Override requested"),
        "override_approve": N_("Override approved"),
        "override_deny": N_("Override refused"),
        "file_grievance": N_("Grievance filed"),
        "add_note": N_("Note added"),
        "change_status": N_("Status changed"),
        "assign": N_("Assigned"),
        "escalate_overdue": N_("Overdue escalated"),
        "export": N_("Exported"),
        "registry_remove": N_("Removed from the registry"),
    },
    "intent": {
        "cnic": N_("Eligibility (CNIC)"),
        "pay": N_("Payment"),
        "complaint": N_("Complaint"),
        "track": N_("Track a complaint"),
        "language": N_("Language"),
        "help": N_("Help"),
        "stop": N_("Stop"),
        "start": N_("Start"),
        "code": N_("Code"),
        "number": N_("Menu choice"),
        "not_cnic": N_("Not a CNIC"),
        "empty": N_("Empty"),
        "unknown": N_("Not understood"),
    },
    "scope": {
        "sender": N_("Per sender"),
        "telegram": N_("Per Telegram user"),
        "ip": N_("Per IP address"),
        "cnic": N_("Per CNIC"),
        "otp": N_("Codes per CNIC"),
        "partner": N_("Per partner"),
        "agent": N_("Per agent"),
    },
    "outcome": {"allowed": N_("Allowed"), "limited": N_("Limited")},
    # Lower case: a prefix of the record's id in the audit log ("person: 35202-*******-2").
    "record_type": {
        "person": N_("person"),
        "grievance": N_("grievance"),
        "agent": N_("staff account"),
        "audit_log": N_("audit log"),
        "dashboard": N_("dashboard"),
    },
}


def label(language: str, kind: str, value: str | None) -> str:
    """The translated label of a stored value (`label("ur", "status", "open")`); unknown values
    are shown as they are stored, so a new enum member is visible before it is translated."""
    if value is None:
        return translations(language).gettext(N_("(none)"))
    message = LABELS.get(kind, {}).get(value)
    return translations(language).gettext(message) if message else value
