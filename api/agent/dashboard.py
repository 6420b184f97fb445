"""What the supervisors' dashboard shows, gathered in one place (the page and the CSV share it).

Traffic, languages, what people ask and the eligibility outcomes of CNIC look-ups are counts of
`inbound_messages` (one row per message: channel, language, intent, outcome) that `rabta worker`
keeps in `inbound_traffic` (`roll_up`: per hour, then per Pakistan day), plus the messages since
the last count, read from `inbound_messages` by `received_at`: a 90-day view reads about 90
days × a few hundred counts and the last hour's messages, not every message of the 90 days.
Grievances: those being worked, and those closed in the period.
Rate-limit hits are this process's Prometheus counters (`rabta_ratelimit_hits_total`): with
several workers each shows its own, and `/metrics` scraped by Prometheus is the fleet view.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from api.agent import repository
from api.agent.i18n import PKT, pakistan_today
from api.grievances import repository as grievances
from api.grievances.schemas import Status
from api.outbox.worker import nap
from api.ratelimit.service import HITS

if TYPE_CHECKING:
    from api.runtime import Runtime

log = logging.getLogger(__name__)

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
    traffic: dict[str, dict[dt.date, int]] = defaultdict(lambda: defaultdict(int))
    languages: dict[str | None, int] = defaultdict(int)
    intents: dict[str | None, int] = defaultdict(int)
    lookups: dict[dt.date, int] = defaultdict(int)
    outcomes: dict[str | None, int] = defaultdict(int)
    for starts_at, channel, language, intent, outcome, n in await _traffic(session, since=since):
        day = starts_at.astimezone(PKT).date()
        traffic[channel][day] += n
        languages[language] += n
        intents[intent] += n
        if intent == "cnic":
            lookups[day] += n
            outcomes[outcome] += n
    board.traffic = {channel: dict(days) for channel, days in sorted(traffic.items())}
    board.languages = dict(languages)
    board.intents = dict(intents)
    board.lookups_per_day = dict(lookups)
    board.outcomes = dict(outcomes)
    # The grievances being worked, by category, status and district (read through their partial
    # indexes), and those closed in the period: never every grievance ever filed.
    board.by_category = await grievances.count_by(session, dimension="category", statuses=WORKED)
    board.by_status = {
        **await grievances.count_by(session, dimension="status", statuses=WORKED),
        **await grievances.count_closed(session, since=since),
    }
    board.by_district = _top(
        await grievances.count_by(session, dimension="district", statuses=WORKED)
    )
    board.worked = await grievances.count_queue(session, grievances.QueueFilter(statuses=WORKED))
    board.overdue = await grievances.count_overdue(session, now=now, statuses=WORKED)
    board.escalated = board.by_status.get(Status.ESCALATED.value, 0)
    board.ratelimit = ratelimit_hits()
    return board


async def _traffic(session: AsyncSession, *, since: dt.datetime) -> list[repository.TrafficRow]:
    """Inbound messages from `since` on, counted: what `roll_up` stored, and the messages after
    it (the last hour or so) read from `inbound_messages`. Either way the same figures."""
    counted_until = await repository.traffic_counted_until(session)
    if counted_until is None or counted_until <= since:
        return await repository.count_inbound_hours(session, since=since)
    return [
        *await repository.counted_traffic(session, since=since),
        *await repository.count_inbound_hours(session, since=counted_until),
    ]


#: An hour's messages are counted this long after it ends: a message is recorded with the moment
#: it arrived by a transaction that commits a little later (held messages are recorded when
#: answered, with that moment).
SETTLE = dt.timedelta(minutes=10)
#: The most one roll-up transaction counts (a first one starts at the longest period's first day).
STEP = dt.timedelta(hours=24)
#: How often `rabta worker` rolls up.
ROLL_UP_INTERVAL = 300.0


def _hour_start(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def _day_start(moment: dt.datetime) -> dt.datetime:
    """Midnight in Pakistan starting the day of `moment`, in UTC."""
    day = moment.astimezone(PKT).date()
    return dt.datetime.combine(day, dt.time(), tzinfo=PKT).astimezone(dt.UTC)


async def roll_up(session: AsyncSession, *, now: dt.datetime) -> bool:
    """Count the next hours of inbound messages into `inbound_traffic` (at most `STEP` of them,
    up to the last hour ended `SETTLE` ago); once caught up, merge the hours of past Pakistan days
    into one count per day. True when more is left for another call (another transaction)."""
    until = _hour_start(now - SETTLE)
    await repository.lock_traffic_counts(session)
    start = await repository.traffic_counted_until(session)
    if start is None:
        start = _day_start(now) - (max(PERIODS) - 1) * dt.timedelta(days=1)
    nxt = await repository.next_inbound_at(session, since=start, until=until)
    if nxt is not None:
        # Hours without messages (a new installation, an outage) are skipped, not walked.
        first = _hour_start(nxt)
        end = min(until, first + STEP)
        rows = await repository.count_inbound_hours(session, since=first, until=end)
        await repository.add_traffic_counts(session, rows=rows, hours=1)
        if end < until:
            return True
    await _merge_days(session, before=_day_start(until))
    return False


async def _merge_days(session: AsyncSession, *, before: dt.datetime) -> None:
    """One count per Pakistan day, channel, language, intent and outcome for the days before
    `before`: a 90-day dashboard reads 90 days' counts, not 2,160 hours'."""
    hourly = await repository.hourly_traffic_before(session, until=before)
    if not hourly:
        return
    days: dict[tuple[dt.datetime, str, str | None, str | None, str | None], int] = defaultdict(int)
    for starts_at, channel, language, intent, outcome, n in hourly:
        days[(_day_start(starts_at), channel, language, intent, outcome)] += n
    await repository.delete_hourly_traffic_before(session, until=before)
    await repository.add_traffic_counts(
        session, rows=[(*key, n) for key, n in days.items()], hours=24
    )


async def roll_up_all(runtime: Runtime, *, stop: asyncio.Event | None = None) -> None:
    """Roll up until caught up (or `stop` is set), a transaction per step."""
    more = True
    while more and not (stop is not None and stop.is_set()):
        async with runtime.db.transaction() as session:
            more = await roll_up(session, now=dt.datetime.now(dt.UTC))


async def run_roll_ups(
    runtime: Runtime, *, stop: asyncio.Event, interval: float = ROLL_UP_INTERVAL
) -> None:
    """Keep the dashboard's traffic counts current until `stop` is set."""
    while not stop.is_set():
        try:
            await roll_up_all(runtime, stop=stop)
        except Exception:  # the database may be restarting: try again next round
            log.exception("dashboard roll-up failed")
        await nap(stop, interval)


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
