"""The supervisors' dashboard: counts from inbound messages and grievances, SVG charts, CSV."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io

from sqlalchemy import delete, select

from api.agent import charts, i18n
from api.agent.dashboard import build, csv_rows, roll_up
from api.grievances import service
from api.grievances.schemas import Status
from api.registry.models import InboundMessage, InboundTraffic
from tests.agent.conftest import audit_entries
from tests.agent.test_grievances import file
from tests.conftest import ELIGIBLE_WIFE, NOT_ELIGIBLE, UNDER_REVIEW

NOW = dt.datetime.now(dt.UTC)


async def add_messages(db) -> None:
    """Traffic of the last three days: SMS and WhatsApp, Urdu and Roman Urdu, mostly CNICs."""
    rows = [
        # (days ago, channel, language, intent)
        (0, "sms", "ur_Latn", "cnic"),
        (0, "sms", "ur_Latn", "cnic"),
        (0, "whatsapp", "ur", "pay"),
        (1, "sms", "ur", "cnic"),
        (1, "ussd", "ur", "complaint"),
        (2, "telegram", "en", "help"),
        (40, "sms", "en", "cnic"),  # outside every period but 90 days
    ]
    async with db.transaction() as session:
        for i, (days_ago, channel, language, intent) in enumerate(rows):
            session.add(
                InboundMessage(
                    channel=channel,
                    external_id=f"SM{i:04d}",
                    received_at=NOW - dt.timedelta(days=days_ago, minutes=1),
                    intent=intent,
                    language=language,
                )
            )


async def test_the_numbers(registry, settings):
    await add_messages(registry)
    await file(registry, settings)
    await file(registry, settings, cnic=NOT_ELIGIBLE, days_ago=10, district="Karachi Central")
    await file(registry, settings, cnic=UNDER_REVIEW, district="Peshawar", category="other")
    async with registry.sessions() as session:
        board = await build(session, days=7, now=NOW)
    today = i18n.pakistan_today(NOW)
    yesterday = today - dt.timedelta(days=1)
    assert len(board.day_list) == 7 and board.day_list[-1] == today
    assert board.traffic["sms"] == {today: 2, yesterday: 1}
    assert board.traffic["whatsapp"] == {today: 1}
    assert set(board.traffic) == {"sms", "whatsapp", "ussd", "telegram"}
    assert board.total_messages == 6
    assert board.languages == {"ur_Latn": 2, "ur": 3, "en": 1}
    assert board.intents == {"cnic": 3, "pay": 1, "complaint": 1, "help": 1}
    assert board.lookups_per_day == {today: 2, yesterday: 1}
    assert board.by_category == {"payment_not_received": 2, "other": 1}
    assert board.by_status == {"open": 3}
    assert board.by_district == {"Lahore": 1, "Karachi Central": 1, "Peshawar": 1}
    assert (board.worked, board.overdue) == (3, 1)
    assert board.breach_rate == 1 / 3
    rows = list(csv_rows(board))
    assert rows[0] == ["section", "key", "day", "value"]
    assert ["traffic", "sms", today.isoformat(), "2"] in rows
    assert ["language", "ur", "", "3"] in rows
    assert ["grievances_by_district", "Peshawar", "", "1"] in rows
    assert ["sla", "breach_rate", "", "0.3333"] in rows


async def test_the_page_draws_inline_svg_charts(new_client, staff, registry, settings):
    await add_messages(registry)
    await file(registry, settings)
    sadia = await new_client("sadia")
    response = await sadia.get("/agent/dashboard?days=7")
    assert response.status_code == 200
    page = response.text
    assert page.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img"') >= 8
    for title in (
        "Messages per channel per day",
        "Language of messages",
        "What people ask",
        "Eligibility look-ups per day",
        "Grievances by category",
        "Grievances by status",
        "Grievances by district",
        "SLA breach rate",
        "Rate-limit checks",
    ):
        assert f">{title}</title>" in page, title
    assert "Roman Urdu" in page and "WhatsApp" in page and "Payment not received" in page
    assert "<script" not in page.replace('<script src="/agent/static/console.js', "")
    assert "https://" not in page  # nothing fetched from elsewhere


async def test_rate_limit_hits_come_from_the_prometheus_counter(new_client, staff, app):
    await app.state.runtime.rate_limiter.hit("sender", "+923001234567")
    sadia = await new_client("sadia")
    page = (await sadia.get("/agent/dashboard")).text
    assert "Per sender · Allowed" in page


async def test_the_csv_export_is_audited(new_client, staff, registry, settings):
    await add_messages(registry)
    await file(registry, settings, cnic=ELIGIBLE_WIFE)
    sadia = await new_client("sadia")
    response = await sadia.get("/agent/dashboard.csv?days=30")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.content.startswith(codecs.BOM_UTF8)  # Excel then reads it as UTF-8
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["section", "key", "day", "value"]
    assert ["grievances_by_category", "payment_not_received", "", "1"] in rows
    assert sum(1 for r in rows if r[0] == "traffic" and r[1] == "sms") == 30
    [entry] = await audit_entries(registry, action="export", record_type="dashboard")
    assert (entry.actor, entry.record_id) == ("sadia", "30 days")


async def test_days_are_pakistan_calendar_days(registry):
    """At 01:30 in Pakistan (20:30 UTC the evening before) today is already the 25th there: a
    message at 00:30 Pakistan time counts for the 25th, one at 23:30 for the 24th, and the
    period starts at midnight in Pakistan, not at midnight UTC."""
    now = dt.datetime(2026, 11, 24, 20, 30, tzinfo=dt.UTC)
    at = {
        "SM-a": dt.datetime(2026, 11, 24, 19, 30, tzinfo=dt.UTC),  # 25 Nov 00:30 PKT
        "SM-b": dt.datetime(2026, 11, 24, 18, 30, tzinfo=dt.UTC),  # 24 Nov 23:30 PKT
        "SM-c": dt.datetime(2026, 11, 18, 19, 30, tzinfo=dt.UTC),  # 19 Nov 00:30 PKT: day one
        "SM-d": dt.datetime(2026, 11, 18, 18, 30, tzinfo=dt.UTC),  # 18 Nov 23:30 PKT: before
    }
    async with registry.transaction() as session:
        for external_id, received_at in at.items():
            session.add(
                InboundMessage(
                    channel="sms",
                    external_id=external_id,
                    received_at=received_at,
                    intent="cnic",
                    language="ur",
                )
            )
    async with registry.sessions() as session:
        board = await build(session, days=7, now=now)
    assert board.day_list[0] == dt.date(2026, 11, 19)
    assert board.day_list[-1] == dt.date(2026, 11, 25)
    assert board.since == dt.datetime(2026, 11, 18, 19, 0, tzinfo=dt.UTC)
    assert board.traffic["sms"] == {
        dt.date(2026, 11, 25): 1,
        dt.date(2026, 11, 24): 1,
        dt.date(2026, 11, 19): 1,
    }
    assert board.lookups_per_day == board.traffic["sms"]
    assert board.total_messages == 3 and board.languages == {"ur": 3}
    assert ["traffic", "sms", "2026-11-25", "1"] in list(csv_rows(board))


async def test_the_export_is_named_by_the_day_in_pakistan(new_client, staff):
    sadia = await new_client("sadia")
    response = await sadia.get("/agent/dashboard.csv")
    today = dt.datetime.now(i18n.PKT).date().isoformat()
    assert f'filename="rabta-dashboard-{today}.csv"' in response.headers["content-disposition"]
    page = (await sadia.get("/agent/dashboard")).text
    assert "Days are Pakistan calendar days" in page and "UTC" not in page


def test_charts_escape_their_labels_and_handle_nothing():
    svg = charts.bar_chart("Districts <b>", [charts.Bar("<script>x</script>", 3)])
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "<title" in svg and "Districts &lt;b&gt;" in svg
    empty = charts.stacked_columns("Nothing", ["1 Dec"], [charts.Series("SMS", [0])], empty="none")
    assert ">none</text>" in empty
    share = charts.share_bar("SLA", 1, 4, caption="1 of 4")
    assert 'width="139.5"' in share  # a quarter of the 558-unit track


def _figures(board) -> tuple:
    return (
        board.traffic,
        board.languages,
        board.intents,
        board.lookups_per_day,
        board.outcomes,
        board.total_messages,
    )


async def _roll_up(db, *, now: dt.datetime) -> int:
    """Roll up until caught up, as `rabta worker` does; how many transactions it took."""
    steps = 1
    while True:
        async with db.transaction() as session:
            if not await roll_up(session, now=now):
                return steps
        steps += 1


async def test_rolled_up_counts_give_the_live_figures_without_reading_old_messages(registry):
    """What the worker rolls up (per hour, then per Pakistan day) shows exactly what counting
    every message did, messages after the last count included; and the dashboard no longer
    reads the messages it counted: with them gone (a dropped partition) the figures stay."""
    now = dt.datetime(2026, 11, 25, 9, 40, tzinfo=dt.UTC)  # 14:40 in Pakistan
    rows = [
        # (minutes ago, channel, language, intent, outcome)
        (5, "sms", "ur", "cnic", "eligible"),  # after the last hour that is counted
        (45, "sms", "ur", "cnic", "not_found"),  # in the hour that ended 5 minutes ago
        (50, "whatsapp", "ur_Latn", "pay", None),
        (60 * 14 + 50, "sms", "ur", "cnic", "eligible"),  # 23:50 PKT yesterday
        (60 * 14 + 30, "sms", "ur", "cnic", "eligible"),  # 00:10 PKT today
        (60 * 30, "telegram", "en", "help", None),
        (60 * 24 * 3, "ussd", "ps", "complaint", None),
        (60 * 24 * 3 + 7, "sms", None, None, None),  # claimed, never answered
        (60 * 24 * 12, "sms", "sd", "cnic", "not_eligible"),
        (60 * 24 * 40, "sms", "en", "cnic", "eligible"),  # only in the 90 days
        (60 * 24 * 95, "sms", "en", "cnic", "eligible"),  # in no period
    ]
    async with registry.transaction() as session:
        for i, (minutes, channel, language, intent, outcome) in enumerate(rows):
            session.add(
                InboundMessage(
                    channel=channel,
                    external_id=f"SMroll{i}",
                    received_at=now - dt.timedelta(minutes=minutes),
                    language=language,
                    intent=intent,
                    outcome=outcome,
                )
            )
    live = {}
    async with registry.sessions() as session:
        for days in (7, 14, 90):
            live[days] = _figures(await build(session, days=days, now=now))
    assert live[7][0]["sms"][dt.date(2026, 11, 25)] == 3
    assert live[7][0]["sms"][dt.date(2026, 11, 24)] == 1
    assert live[90][5] == 10

    # From the longest period's first day, a day per transaction, skipping the empty ones.
    assert await _roll_up(registry, now=now) > 1
    async with registry.sessions() as session:
        counts = list(await session.scalars(select(InboundTraffic)))
        for days in (7, 14, 90):
            assert _figures(await build(session, days=days, now=now)) == live[days], days
    assert sum(c.messages for c in counts) == 9  # the 90 days' less the 5-minute-old one
    hourly = {c.starts_at.astimezone(dt.UTC) for c in counts if c.hours == 1}
    assert min(hourly) == dt.datetime(2026, 11, 24, 19, tzinfo=dt.UTC)  # today: hours
    assert {c.hours for c in counts} == {1, 24}  # past days: one count a day

    # Rolling up again changes nothing; a later message still shows.
    assert await _roll_up(registry, now=now) == 1
    async with registry.transaction() as session:
        await session.execute(
            delete(InboundMessage).where(InboundMessage.received_at < now - dt.timedelta(hours=1))
        )
        session.add(InboundMessage(channel="sms", external_id="SMlate", received_at=now))
    async with registry.sessions() as session:
        board = await build(session, days=90, now=now)
    assert board.total_messages == 11
    assert board.traffic["sms"][dt.date(2026, 11, 25)] == 4
    assert board.outcomes == live[90][4]


async def test_grievance_breakdowns_are_of_the_ones_worked_and_the_period(registry, settings):
    """By category and district: the grievances being worked; by status, those and the ones
    closed in the period (a grievance resolved long ago no longer counts)."""
    old = await file(registry, settings, days_ago=40, district="Quetta", category="other")
    recent = await file(registry, settings, days_ago=3, district="Sukkur", category="other")
    await file(registry, settings, district="Lahore")
    for ticket, days_ago in ((old, 30), (recent, 2)):
        async with registry.transaction() as session:
            await service.change_status(
                session,
                ticket_id=ticket,
                to=Status.RESOLVED,
                actor="sadia",
                note=None,
                sla_days=settings.grievance_sla_days,
                now=NOW - dt.timedelta(days=days_ago),
            )
    async with registry.sessions() as session:
        board = await build(session, days=14, now=NOW)
        longer = await build(session, days=90, now=NOW)
    assert board.by_category == {"payment_not_received": 1}
    assert board.by_district == {"Lahore": 1}
    assert board.by_status == {"open": 1, "resolved": 1}
    assert longer.by_status == {"open": 1, "resolved": 2}
    assert (board.worked, board.escalated) == (1, 0)


async def test_a_note_on_a_grievance_closed_long_ago_does_not_count_it_as_closed_now(
    registry, settings
):
    """ "Closed in the period" is when a grievance was resolved or rejected, not when it was last
    touched: a note added today to one resolved 30 days ago leaves it out of the last 14 days,
    and one resolved, reopened and resolved again today counts once."""
    old = await file(registry, settings, days_ago=40)
    again = await file(registry, settings, days_ago=40)
    steps = (
        (old, Status.RESOLVED, 30),
        (again, Status.RESOLVED, 30),
        (again, Status.OPEN, 1),
        (again, Status.REJECTED, 0),
    )
    for ticket, to, days_ago in steps:
        async with registry.transaction() as session:
            await service.change_status(
                session,
                ticket_id=ticket,
                to=to,
                actor="sadia",
                note="checked" if to is Status.OPEN else None,
                sla_days=settings.grievance_sla_days,
                now=NOW - dt.timedelta(days=days_ago),
            )
    async with registry.transaction() as session:
        await service.add_note(
            session, ticket_id=old, actor="sadia", note="Called her back.", internal=False, now=NOW
        )
    async with registry.sessions() as session:
        board = await build(session, days=14, now=NOW)
        longer = await build(session, days=90, now=NOW)
    assert board.by_status == {"rejected": 1}
    assert longer.by_status == {"resolved": 1, "rejected": 1}
