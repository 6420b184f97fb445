"""What every SMS reply costs, per language, with worst-case data (`rabta i18n report`).

The budget of SPEC §2 is the SMS channel's (bot/channels/sms.py: the renderer reads it too, to
leave out a spare line that would go over it); the worst-case data it is checked against lives
here, so the report and the tests (tests/bot/test_dialogue.py, tests/bot/test_i18n_report.py)
read one source:

- answers, help, prompts and confirmations (``SMS_ONE_SEGMENT``): 1 segment in English and Roman
  Urdu, at most 2 in Arabic script;
- payment schedules and grievance statuses (``SMS_TWO_SEGMENTS``): at most 2 and 3.

English and Roman Urdu replies must also stay GSM-7: one curly quote or en dash makes them UCS-2,
which costs more than twice as much.

Dates are worst-case per language too: the longest month name is not the same in every language
(Sept in English, July and Oct in Urdu, Feb and Sept in Sindhi), so each language's messages are
rendered with the day and the collection window it writes longest (``longest_dates``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from api.eligibility.schemas import ProgrammeState
from api.grievances.schemas import Category, Status
from api.payments.schemas import Tranche
from bot.channels.sms import (
    LATIN_LANGUAGES,
    SMS_MESSAGES,
    sms_budget,
)
from bot.channels.sms import SMS_ONE_SEGMENT as SMS_ONE_SEGMENT
from bot.channels.sms import SMS_TWO_SEGMENTS as SMS_TWO_SEGMENTS
from bot.formatting import format_date
from bot.i18n import LANGUAGES
from bot.render import Renderer
from bot.segments import Encoding, cost_per_million, measure

#: PKR per SMS segment. Local bulk and short-code SMS in Pakistan cost about Rs 0.42-0.70 per
#: message (PTCL Corporate SMS packages; Ufone's short-code rate is Rs 0.50 + tax); sending through
#: an international gateway such as Twilio costs far more: pass its rate with --price/--currency.
DEFAULT_PRICE_PER_SEGMENT = 0.5
DEFAULT_CURRENCY = "PKR"

#: A place name of 120 characters, as long as the registry takes (`payments.place`, the CSV
#: importer); the SMS schedule shows the first 60 units of it (`bot.channels.sms.PLACE_UNITS`).
PLACE_120 = (
    "Government Girls Higher Secondary School No. 2, Muzaffargarh Road, "
    "near the old Ghalla Mandi, Tehsil Kot Addu, Distt. MG"
)
#: A grievance note as an agent writes it: the templates cut notes at 80 characters.
NOTE_LONG = (
    "Retailer in Kot Addu asked to return the Rs 2,000 he deducted; call if not paid within 7 days."
)


def tranche(
    name: str, status: str, *, reason: str | None = None, mode: str = "retailer"
) -> Tranche:
    """A tranche with the costliest data: the largest amount, the longest programme and place.

    Its window is an example: the report renders each language with the one it writes longest.
    """
    return Tranche(
        payment_id=f"PAY-{name}",
        programme="taleemi_wazaif",
        tranche=name,
        amount_pkr=999_999,
        window_start=dt.date(2026, 9, 28),
        window_end=dt.date(2026, 12, 31),
        mode=mode,
        place=PLACE_120,
        status=status,
        reason=reason,
    )


@dataclass(frozen=True)
class GrievanceEventView:
    """The fields of a grievance event the templates read."""

    at: dt.datetime
    note: str | None


@dataclass(frozen=True)
class GrievanceView:
    """The fields of a grievance the templates read, as the registry model has them."""

    ticket_id: str
    category: Category
    status: Status
    created_at: dt.datetime
    due_at: dt.datetime
    events: tuple[GrievanceEventView, ...]


def grievance(
    ticket_id: str, *, category: Category, status: Status, note: str | None
) -> GrievanceView:
    """A grievance with the given category and status and a long last note."""
    filed = dt.datetime(2026, 9, 28, 10, 30, tzinfo=dt.UTC)
    due = dt.datetime(2026, 12, 31, 17, 0, tzinfo=dt.UTC)
    return GrievanceView(
        ticket_id=ticket_id,
        category=category,
        status=status,
        created_at=filed,
        due_at=due,
        events=(GrievanceEventView(at=filed, note=note),),
    )


#: The years the longest dates are looked for in: every day of a leap year and of the next, so a
#: window may also run into a new year. Years of four digits all write as long.
DATE_YEARS: tuple[int, int] = (2027, 2028)


@dataclass(frozen=True)
class WorstDates:
    """The dates a language writes longest, one for each way the SMS templates write dates."""

    #: a single day, ``d MMM y`` (a complaint's answer due)
    day: dt.date
    #: a collection window, as ``format_date_range`` writes it (a payment schedule)
    window: tuple[dt.date, dt.date]


def _calendar() -> list[dt.date]:
    first, last = dt.date(DATE_YEARS[0], 1, 1), dt.date(DATE_YEARS[-1], 12, 31)
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


_Key = TypeVar("_Key")


def _longest(texts: Mapping[_Key, str]) -> _Key:
    """The key of the text of most SMS units; the first one on a tie."""
    return max(texts, key=lambda key: measure(texts[key]).units)


@cache
def longest_dates(language: str) -> WorstDates:
    """The day and the collection window that `language` writes longest, found with Babel.

    A window is any two days: the registry sets no longest window, and one that runs into a new
    year writes both years. It is sought among, in each month, the first and the last of the
    days written longest there (the 10th and the month's last): the month and the year read the
    same on every day of a month, so one of them is the longest start or end of a window in
    each of ``format_date_range``'s shapes (within a month, within a year, across years).
    """
    days = {day: format_date(day, language) for day in _calendar()}
    units = {day: measure(text).units for day, text in days.items()}
    candidates: list[dt.date] = []
    for month in dict.fromkeys((day.year, day.month) for day in days):
        mine = [day for day in days if (day.year, day.month) == month]
        longest = [day for day in mine if units[day] == max(units[d] for d in mine)]
        candidates.extend(dict.fromkeys((longest[0], longest[-1])))
    windows = {
        (start, end): format_date((start, end), language)
        for i, start in enumerate(candidates)
        for end in candidates[i + 1 :]
    }
    return WorstDates(day=_longest(days), window=_longest(windows))


def _dated(context: Mapping[str, Any], dates: WorstDates) -> dict[str, Any]:
    """`context` with every date a template reads set to `dates`."""

    def dated_tranche(t: Tranche) -> Tranche:
        return dataclasses.replace(t, window_start=dates.window[0], window_end=dates.window[1])

    def dated_grievance(g: GrievanceView) -> GrievanceView:
        filed = dt.datetime.combine(dates.day, g.created_at.timetz())
        due = dt.datetime.combine(dates.day, g.due_at.timetz())
        events = tuple(dataclasses.replace(event, at=filed) for event in g.events)
        return dataclasses.replace(g, created_at=filed, due_at=due, events=events)

    return {
        **context,
        "due": dates.day,
        "next": dated_tranche(context["next"]),
        "recent": [dated_tranche(t) for t in context["recent"]],
        "grievance": dated_grievance(context["grievance"]),
        "grievances": [dated_grievance(g) for g in context["grievances"]],
    }


#: The longest values each template can meet: 120-character places, the largest amounts, the
#: longest reasons, categories and statuses, three earlier tranches, four CNICs on one phone.
WORST_CASE_CONTEXT: dict[str, Any] = {
    "cnic": "35202-*******-1",
    "mobile": "+92300****567",
    "cnics": ["35202-*******-1", "35202-*******-2", "35202-*******-3", "35202-*******-4"],
    "language_code": "pa_Arab",
    # The person's own programmes (USSD names them; SMS variants below try each state).
    "programmes": [
        ProgrammeState(programme, "suspended")
        for programme in ("taleemi_wazaif", "kafaalat", "nashonuma")
    ],
    "listed": True,
    "code": "123456",
    "minutes": 5,
    "seconds": 59,
    "tries_left": 4,
    "next": tranche("2026-Q4", "withheld", reason="biometric verification failed"),
    "recent": [
        tranche("2026-Q3", "collected"),
        tranche("2026-Q2", "failed"),
        tranche("2026-Q1", "collected"),
    ],
    # grievances
    "ticket": "G-7K3M9Q",
    "due": dt.date(2026, 12, 31),
    "category": Category.DATA_CORRECTION.value,
    # the flow shows at most 40 units of the description back (grievance.PREVIEW_UNITS)
    "description": "Retailer took Rs 2,000 from my payment..",
    "status": Status.ESCALATED,
    "note": NOTE_LONG,
    "total": 12,
    "grievances": [
        grievance(
            "G-7K3M9Q", category=Category.DATA_CORRECTION, status=Status.ESCALATED, note=None
        ),
        grievance("G-4HX2PZ", category=Category.OTHER, status=Status.REJECTED, note=None),
        grievance("G-9WQ7RM", category=Category.OTHER, status=Status.IN_PROGRESS, note=None),
    ],
    "grievance": grievance(
        "G-7K3M9Q", category=Category.DATA_CORRECTION, status=Status.ESCALATED, note=NOTE_LONG
    ),
}

#: Registry values the payment templates turn into words: every one is tried (below).
PAYMENT_STATUSES = ("scheduled", "ready", "collected", "failed", "withheld")
PAYMENT_REASONS = (
    None,
    "biometric verification failed",
    "CNIC expired",
    "account dormant",
    "under review",
    "network outage at collection point",
    "duplicate claim check",
)
PAYMENT_MODES = ("bank", "campsite", "retailer")


def _worst_case_variants() -> dict[str, list[dict[str, Any]]]:
    schedule = [
        {"next": tranche("2026-Q4", status, reason=reason, mode=mode)}
        for status in PAYMENT_STATUSES
        for reason in (PAYMENT_REASONS if status in ("failed", "withheld") else (None,))
        for mode in PAYMENT_MODES
    ]
    statuses = [{"status": status} for status in Status]
    return {
        # The person themself: three programmes, in every state but active (and exited, which
        # is not named).
        "eligibility/eligible": [
            {"programmes": []},  # anyone else: the coarse answer
            *(
                {
                    "programmes": [
                        ProgrammeState(programme, state)
                        for programme in ("taleemi_wazaif", "kafaalat", "nashonuma")
                    ]
                }
                for state in ("suspended", "pending")
            ),
        ],
        "payments/schedule": schedule,
        "grievance/status": [
            {"grievance": grievance("G-7K3M9Q", category=c, status=s, note=NOTE_LONG)}
            for c in Category
            for s in Status
        ],
        "grievance/list": [
            {
                "grievances": [
                    grievance(t, category=Category.OTHER, status=s, note=None)
                    for t in ("G-7K3M9Q", "G-4HX2PZ", "G-9WQ7RM")
                ]
            }
            for s in Status
        ],
        "grievance/update": statuses,
        # Either limit, told in minutes or (over 90) in hours.
        "errors/rate_limited": [
            {"minutes": minutes, "scope": scope}
            for minutes in (5, 90, 1439)
            for scope in ("sender", "cnic")
        ],
        "grievance/confirm": [{"category": c.value} for c in Category],
        # Five CNICs on the phone are listed; more are asked for (verify/choose_person.j2).
        "verify/choose_person": [
            {"cnics": [f"35202-***{n:04d}-{n % 10}" for n in range(count)]} for count in (5, 12)
        ],
        "grievance/filed": [{"category": c.value} for c in Category],
    }


#: Where the words depend on data (statuses, reasons, modes, categories), each variant is
#: rendered with WORST_CASE_CONTEXT updated by it, and the costliest rendering is the one
#: reported and tested: the longest word differs between languages.
WORST_CASE_VARIANTS: dict[str, list[dict[str, Any]]] = _worst_case_variants()

#: Templates that are never an SMS body of their own: button and menu labels, words used inside
#: other messages, and the screens of channels without segments. Every other template must be in
#: SMS_MESSAGES (tests/bot/test_i18n_report.py checks), so a new SMS reply cannot skip the budget.
NOT_SMS_MESSAGES: frozenset[str] = frozenset(
    {
        "language/name",  # a language's name in its own script, in menus
        "verify/person_option",  # a masked CNIC as a numbered choice
        "verify/contact_saved",  # answers to a phone contact shared on Telegram
        "verify/contact_not_yours",
        "grievance/category_name",  # a category as a button label
        "grievance/status_word",  # a status inside a WhatsApp template message
        "grievance/template_subject",  # a complaint and its CNIC, the same template's other
        "grievance/confirm_yes",  # button labels; SMS spells the choice out
        "grievance/confirm_no",
    }
)
#: Folders of templates for channels that are not SMS.
NOT_SMS_FOLDERS: tuple[str, ...] = ("telegram/", "ussd/")


@dataclass(frozen=True)
class ReportRow:
    """One SMS message in one language, rendered with worst-case data, and what it costs."""

    language: str
    message: str
    encoding: Encoding
    characters: int
    units: int
    segments: int
    budget: int
    cost_per_million: float
    text: str

    @property
    def within_budget(self) -> bool:
        """No more segments than the budget, and GSM-7 where the language is written in Latin."""
        gsm_ok = self.language not in LATIN_LANGUAGES or self.encoding == "GSM-7"
        return self.segments <= self.budget and gsm_ok


@cache
def default_renderer() -> Renderer:
    """The renderer the service uses: brand and programme names from configuration."""
    from api.programmes import get_programmes

    programmes = get_programmes()
    return Renderer(brand=programmes.brand, programme_name=programmes.name)


def worst_case_contexts(name: str, language: str | None = None) -> list[Mapping[str, Any]]:
    """The contexts the SMS `name` is rendered with; the costliest counts.

    With a `language`, every date is the one that language writes longest (``longest_dates``).
    """
    variants = WORST_CASE_VARIANTS.get(name, [{}])
    contexts: list[Mapping[str, Any]] = [{**WORST_CASE_CONTEXT, **variant} for variant in variants]
    if language is None:
        return contexts
    dates = longest_dates(language)
    return [_dated(context, dates) for context in contexts]


def render_worst_case(renderer: Renderer, name: str, language: str) -> str:
    """The costliest SMS text of `name` in `language`: most segments, then most units."""
    texts = [
        renderer.render_text(name, context, language=language, channel="sms")
        for context in worst_case_contexts(name, language)
    ]
    return max(texts, key=lambda text: (measure(text).segments, measure(text).units))


def build_report(
    price_per_segment: float,
    *,
    renderer: Renderer | None = None,
    messages: Sequence[str] | None = None,
    languages: Sequence[str] = LANGUAGES,
) -> list[ReportRow]:
    """One row per language × SMS message, rendered with the worst-case data."""
    renderer = renderer or default_renderer()
    rows: list[ReportRow] = []
    for language in languages:
        for name in SMS_MESSAGES if messages is None else messages:
            text = render_worst_case(renderer, name, language)
            cost = measure(text)
            rows.append(
                ReportRow(
                    language=language,
                    message=name,
                    encoding=cost.encoding,
                    characters=cost.characters,
                    units=cost.units,
                    segments=cost.segments,
                    budget=sms_budget(name, language),
                    cost_per_million=cost_per_million(cost.segments, price_per_segment),
                    text=text,
                )
            )
    return rows


def _money(amount: float, currency: str) -> str:
    return f"{currency} {amount:,.0f}" if amount >= 100 else f"{currency} {amount:,.2f}"


def report_table(rows: Sequence[ReportRow], currency: str) -> Table:
    """The report as a rich table."""
    table = Table(title="SMS cost per language and message (worst-case data)")
    table.add_column("language")
    table.add_column("message")
    table.add_column("encoding")
    table.add_column("characters", justify="right")
    table.add_column("segments", justify="right")
    table.add_column("budget", justify="right")
    table.add_column("within budget", justify="center")
    table.add_column("cost per million replies", justify="right")
    for row in rows:
        table.add_row(
            row.language,
            row.message,
            row.encoding,
            str(row.characters),
            str(row.segments),
            str(row.budget),
            "[green]✓[/green]" if row.within_budget else "[red]✗[/red]",
            _money(row.cost_per_million, currency),
        )
    return table


def summary_table(rows: Sequence[ReportRow]) -> Table:
    """Per language: the costliest message and the mean segments of a reply."""
    table = Table(title="Per language")
    table.add_column("language")
    table.add_column("messages", justify="right")
    table.add_column("worst message")
    table.add_column("its segments", justify="right")
    table.add_column("mean segments", justify="right")
    table.add_column("over budget", justify="right")
    for language in dict.fromkeys(row.language for row in rows):
        mine = [row for row in rows if row.language == language]
        worst = max(mine, key=lambda row: (row.segments, row.units))
        mean = sum(row.segments for row in mine) / len(mine)
        over = sum(not row.within_budget for row in mine)
        table.add_row(
            language,
            str(len(mine)),
            worst.message,
            f"{worst.segments}/{worst.budget}",
            f"{mean:.2f}",
            str(over) if over else "0",
        )
    return table


def _report_console(tables: tuple[Table, ...]) -> Console:
    """The terminal's console; piped or redirected, one as wide as the widest table.

    Not writing to a terminal, rich assumes 80 columns and cuts every cell that does not fit to
    "…", which leaves a saved or grepped report unreadable.
    """
    console = Console()
    if console.is_terminal:
        return console
    unbounded = console.options.update_width(sys.maxsize)
    width = max(Measurement.get(console, unbounded, table).maximum for table in tables)
    return Console(width=width)


def report(
    price: Annotated[
        float,
        typer.Option(
            "--price",
            min=0.0,
            help="Price of one SMS segment (default: a Pakistani bulk/short-code rate in PKR).",
        ),
    ] = DEFAULT_PRICE_PER_SEGMENT,
    currency: Annotated[
        str, typer.Option("--currency", help="Currency of --price, for display.")
    ] = DEFAULT_CURRENCY,
) -> None:
    """Print the SMS cost report (its help text is `REPORT_HELP`)."""
    rows = build_report(price)
    tables = (report_table(rows, currency), summary_table(rows))
    console = _report_console(tables)
    for table in tables:
        console.print(table)
    over = [row for row in rows if not row.within_budget]
    console.print(
        f"{len(rows)} rows ({len(SMS_MESSAGES)} messages × {len(rows) // max(len(SMS_MESSAGES), 1)}"
        f" languages), {len(rows) - len(over)} within budget, {len(over)} over; "
        f"price {price:g} {currency} per segment."
    )
    if over:
        for row in over:
            console.print(
                f"[red]over budget:[/red] {row.language} {row.message}: "
                f"{row.segments} segments ({row.encoding}), budget {row.budget}"
            )
        raise typer.Exit(1)


#: `rabta i18n …`: mounted by api/cli.py as `app.add_typer(i18n_app, name="i18n")`.
i18n_app = typer.Typer(help="Languages and translations.", no_args_is_help=True)
#: `rabta i18n report --help`: each paragraph one string, which Typer prints as it is written
#: (a docstring's line breaks showed mid-sentence at any terminal width).
REPORT_HELP = (
    "Per language × SMS message: encoding, characters, segments and cost per million replies."
    "\n\n"
    "Every message is rendered with worst-case data (120-character places, the largest amounts, "
    "the longest reasons, the day and the window each language writes longest). Exits 1 when any "
    "row is over its SPEC §2 budget."
)
i18n_app.command("report", help=REPORT_HELP)(report)
