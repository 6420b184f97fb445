"""What the supervisors' dashboard shows, gathered in one place (the page and the CSV share it).

Traffic, languages, what people ask and the eligibility outcomes of CNIC look-ups come from
`inbound_messages` (one row per message: channel, language, intent, outcome).
Rate-limit hits are this process's Prometheus counters (`rabta_ratelimit_hits_total`): with
several workers each shows its own, and `/metrics` scraped by Prometheus is the fleet view.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from api.agent import repository
from api.agent.i18n import PKT, pakistan_today
from api.grievances import repository as grievances
from api.grievances.schemas import Status
from api.ratelimit.service import HITS

#: Periods the dashboard offers, in days.
PERIODS = (7, 14, 30, 90)
DEFAULT_DAYS = 14
#: Districts shown by name; the rest are summed as "other".
TOP_DISTRICTS = 12

#: The statuses whose grievances are still being worked (the SLA applies to them).
WORKED = (Status.OPEN.value, Status.IN_PROGRESS.value, Status.ESCALATED.value)


@dataclass
class Dashboard:
    days: int
    since: dt.datetime
    day_list: list[dt.date]
    #: channel → day → messages
    traffic: dict[str, dict[dt.date, int]] = field(default_factory=dict)
    languages: dict[str | None, int] = field(default_factory=dict)
    intents: dict[str | None, int] = field(default_factory=dict)
    lookups_per_day: dict[dt.date, int] = field(default_factory=dict)
    outcomes: dict[str | None, int] | None = None
    by_category: dict[str | None, int] = field(default_factory=dict)
    by_status: dict[str | None, int] = field(default_factory=dict)
    by_district: dict[str | None, int] = field(default_factory=dict)
    worked: int = 0
    overdue: int = 0
    escalated: int = 0
    ratelimit: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def breach_rate(self) -> float | None:
        """Share of the grievances being worked that are past their SLA (None: none open)."""
        return self.overdue / self.worked if self.worked else None

    @property
    def total_messages(self) -> int:
        return sum(sum(days.values()) for days in self.traffic.values())


def ratelimit_hits() -> dict[tuple[str, str], int]:
    """(scope, outcome) → checks counted by this process since it started."""
    counts: dict[tuple[str, str], int] = {}
    for metric in HITS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                key = (sample.labels.get("scope", ""), sample.labels.get("outcome", ""))
                counts[key] = counts.get(key, 0) + int(sample.value)
    return counts


async def build(session: AsyncSession, *, days: int, now: dt.datetime) -> Dashboard:
    """Everything the dashboard shows for the last `days` days: Pakistan calendar days, today
    (as the call centre's clocks say) the last, from midnight in Pakistan of the first."""
    today = pakistan_today(now)
    first = today - dt.timedelta(days=days - 1)
    since = dt.datetime.combine(first, dt.time(), tzinfo=PKT).astimezone(dt.UTC)
    board = Dashboard(
        days=days,
        since=since,
        day_list=[first + dt.timedelta(days=i) for i in range(days)],
    )
    traffic: dict[str, dict[dt.date, int]] = defaultdict(dict)
    for day, channel, count in await repository.inbound_per_day(session, since=since):
        traffic[channel][day] = count
    board.traffic = dict(sorted(traffic.items()))
    board.languages = await repository.inbound_by(session, column="language", since=since)
    board.intents = await repository.inbound_by(session, column="intent", since=since)
    for day, _channel, count in await repository.inbound_per_day(
        session, since=since, intent="cnic"
    ):
        board.lookups_per_day[day] = board.lookups_per_day.get(day, 0) + count
    board.outcomes = await repository.inbound_by(
        session, column="outcome", since=since, intent="cnic"
    )
    board.by_category = await grievances.count_by(session, dimension="category")
    board.by_status = await grievances.count_by(session, dimension="status")
    board.by_district = _top(await grievances.count_by(session, dimension="district"))
    board.worked = await grievances.count_queue(session, statuses=WORKED)
    board.overdue = await grievances.count_overdue(session, now=now, statuses=WORKED)
    board.escalated = board.by_status.get(Status.ESCALATED.value, 0)
    board.ratelimit = ratelimit_hits()
    return board


def _top(counts: dict[str | None, int]) -> dict[str | None, int]:
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0] or ""))
    top = dict(ranked[:TOP_DISTRICTS])
    rest = sum(n for _, n in ranked[TOP_DISTRICTS:])
    if rest:
        top["(other)"] = rest
    return top


def sorted_counts(counts: dict[str | None, int]) -> list[tuple[str | None, int]]:
    """Largest first, then by name: the order bars and tables show."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0] or ""))


def csv_rows(board: Dashboard) -> Iterator[list[str]]:
    """The dashboard as rows of `section, key, day, value` (days as ISO dates, Pakistan time)."""
    yield ["section", "key", "day", "value"]
    for channel, per_day in board.traffic.items():
        for day in board.day_list:
            yield ["traffic", channel, day.isoformat(), str(per_day.get(day, 0))]
    for day in board.day_list:
        yield [
            "eligibility_lookups",
            "cnic",
            day.isoformat(),
            str(board.lookups_per_day.get(day, 0)),
        ]
    sections: list[tuple[str, dict[str | None, int] | None]] = [
        ("language", board.languages),
        ("intent", board.intents),
        ("eligibility_outcome", board.outcomes),
        ("grievances_by_category", board.by_category),
        ("grievances_by_status", board.by_status),
        ("grievances_by_district", board.by_district),
    ]
    for section, counts in sections:
        for key, value in sorted_counts(counts or {}):
            yield [section, key or "", "", str(value)]
    yield ["sla", "worked", "", str(board.worked)]
    yield ["sla", "overdue", "", str(board.overdue)]
    rate = board.breach_rate
    yield ["sla", "breach_rate", "", f"{rate:.4f}" if rate is not None else ""]
    for (scope, outcome), value in sorted(board.ratelimit.items()):
        yield ["ratelimit_hits", f"{scope}:{outcome}", "", str(value)]
