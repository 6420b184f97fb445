"""The supervisors' dashboard (charts drawn as inline SVG on the server) and its CSV export."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from api.agent import audit, charts
from api.agent.audit import CSV_BOM, csv_line
from api.agent.dashboard import DEFAULT_DAYS, PERIODS, Dashboard, build, csv_rows, sorted_counts
from api.agent.deps import ConsoleDbDep, SupervisorStaff
from api.agent.i18n import N_, choose_language, format_short_day, gettext, label
from api.agent.pages import page
from api.agent.schemas import AuditAction, RecordType

router = APIRouter(prefix="/agent")


def _days(value: str | None) -> int:
    # ASCII digits only: str.isdigit() also holds for '²', which int() refuses.
    if value and value.isascii() and value.isdigit() and int(value) in PERIODS:
        return int(value)
    return DEFAULT_DAYS


def _bars(counts: dict[str | None, int], kind: str, language: str) -> list[charts.Bar]:
    return [charts.Bar(label(language, kind, key), n) for key, n in sorted_counts(counts)]


def _charts(board: Dashboard, language: str) -> dict[str, object]:
    def t(message: str, **args: object) -> str:
        return gettext(language, message, **args)

    nothing = t(N_("No data for this period."))
    days = [format_short_day(d, language) for d in board.day_list]
    rate = board.breach_rate
    return {
        "traffic": charts.stacked_columns(
            t(N_("Messages per channel per day")),
            days,
            [
                charts.Series(
                    label(language, "channel", channel), [per.get(d, 0) for d in board.day_list]
                )
                for channel, per in board.traffic.items()
            ],
            empty=nothing,
        ),
        "lookups": charts.stacked_columns(
            t(N_("Eligibility look-ups per day")),
            days,
            [
                charts.Series(
                    label(language, "intent", "cnic"),
                    [board.lookups_per_day.get(d, 0) for d in board.day_list],
                )
            ],
            empty=nothing,
        ),
        "languages": charts.bar_chart(
            t(N_("Language of messages")),
            _bars(board.languages, "language", language),
            empty=nothing,
        ),
        "intents": charts.bar_chart(
            t(N_("What people ask")), _bars(board.intents, "intent", language), empty=nothing
        ),
        "outcomes": charts.bar_chart(
            t(N_("Eligibility outcomes")),
            _bars(board.outcomes or {}, "eligibility", language),
            empty=nothing,
        ),
        "by_category": charts.bar_chart(
            t(N_("Grievances by category")),
            _bars(board.by_category, "category", language),
            empty=nothing,
        ),
        "by_status": charts.bar_chart(
            t(N_("Grievances by status")), _bars(board.by_status, "status", language), empty=nothing
        ),
        "by_district": charts.bar_chart(
            t(N_("Grievances by district")),
            [charts.Bar(key or t(N_("(none)")), n) for key, n in sorted_counts(board.by_district)],
            empty=nothing,
        ),
        "sla": charts.share_bar(
            t(N_("SLA breach rate")),
            board.overdue,
            board.worked,
            caption=(
                t(
                    N_(
                        "%(overdue)s of %(worked)s open grievances are past their SLA (%(rate)s%%)."
                    ),
                    overdue=board.overdue,
                    worked=board.worked,
                    rate=f"{rate * 100:.0f}",
                )
                if rate is not None
                else t(N_("No open grievances."))
            ),
        ),
        "ratelimit": charts.bar_chart(
            t(N_("Rate-limit checks")),
            [
                charts.Bar(
                    f"{label(language, 'scope', scope)} · {label(language, 'outcome', outcome)}",
                    n,
                )
                for (scope, outcome), n in sorted(board.ratelimit.items())
            ],
            empty=nothing,
        ),
    }


@router.get("/dashboard")
async def dashboard(
    request: Request, staff: SupervisorStaff, db: ConsoleDbDep, days: str | None = None
) -> Response:
    """Traffic, languages, questions, grievances, SLA breaches and rate limiting at a glance."""
    board = await build(db, days=_days(days), now=dt.datetime.now(dt.UTC))
    return await page(
        request,
        "dashboard.html",
        staff=staff,
        title=N_("Dashboard"),
        board=board,
        charts=_charts(board, choose_language(request)),
        periods=PERIODS,
        sorted_counts=sorted_counts,
    )


@router.get("/dashboard.csv")
async def dashboard_csv(
    request: Request, staff: SupervisorStaff, db: ConsoleDbDep, days: str | None = None
) -> Response:
    """The dashboard's numbers as CSV (section, key, day, value)."""
    period = _days(days)
    board = await build(db, days=period, now=dt.datetime.now(dt.UTC))
    await audit.record(
        db,
        actor=staff.username,
        action=AuditAction.EXPORT,
        record_type=RecordType.DASHBOARD,
        record_id=f"{period} days",
        client_ip=audit.client_ip(request),
    )
    rows = list(csv_rows(board))

    async def lines() -> AsyncIterator[str]:
        yield CSV_BOM
        for row in rows:
            yield csv_line(row)

    # Named by the last day it counts: the call centre's today, as the page shows it.
    today = board.day_list[-1].isoformat()
    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="rabta-dashboard-{today}.csv"'},
    )
