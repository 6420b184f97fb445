"""Which tranche a schedule leads with, and which count as history."""

from __future__ import annotations

import datetime as dt

from api.payments.schemas import Tranche
from api.payments.service import next_to_collect, schedule_from


def tranche(name: str, start: dt.date, status: str = "collected") -> Tranche:
    return Tranche(
        payment_id=name,
        programme="kafaalat",
        tranche=name,
        amount_pkr=14500,
        window_start=start,
        window_end=start + dt.timedelta(days=30),
        mode="bank",
        place="HBL",
        status=status,
        reason=None,
    )


PAYMENTS = [  # newest first, as the repository returns them
    tranche("2027-Q1", dt.date(2027, 2, 1), "scheduled"),
    tranche("2026-Q4", dt.date(2026, 11, 5), "ready"),
    tranche("2026-Q3", dt.date(2026, 8, 5)),
    tranche("2026-Q2", dt.date(2026, 5, 5)),
    tranche("2026-Q1", dt.date(2026, 2, 5)),
    tranche("2025-Q4", dt.date(2025, 11, 5)),
]


def test_the_open_window_leads_and_only_earlier_ones_are_history():
    schedule = schedule_from("3520212345672", PAYMENTS, today=dt.date(2026, 11, 23))
    assert schedule.next.tranche == "2026-Q4"
    assert [p.tranche for p in schedule.recent] == ["2026-Q3", "2026-Q2", "2026-Q1"]
    assert schedule.cnic_masked == "35202-*******-2"


def test_between_windows_the_next_one_leads():
    schedule = schedule_from("3520212345672", PAYMENTS, today=dt.date(2026, 12, 20))
    assert schedule.next.tranche == "2027-Q1"
    assert schedule.recent[0].tranche == "2026-Q4"


def test_after_the_last_window_the_latest_leads():
    schedule = schedule_from("3520212345672", PAYMENTS, today=dt.date(2027, 6, 1))
    assert schedule.next.tranche == "2027-Q1"


def test_no_payments():
    schedule = schedule_from("3520212345672", [], today=dt.date(2026, 11, 23))
    assert schedule.next is None and schedule.recent == ()


def test_a_tranche_collected_early_in_its_window_is_history_not_next():
    """On 25 Nov 2026-Q4 is collected though its window is open: the next payment is 2027-Q1
    (what the SMS, USSD and the console's "Next" badge lead with)."""
    collected = [tranche("2027-Q1", dt.date(2027, 2, 1), "scheduled")] + [
        tranche(p.tranche, p.window_start) for p in PAYMENTS[1:]
    ]
    schedule = schedule_from("3520212345672", collected, today=dt.date(2026, 11, 25))
    assert schedule.next.tranche == "2027-Q1"
    assert [p.tranche for p in schedule.recent] == ["2026-Q4", "2026-Q3", "2026-Q2"]
    assert next_to_collect(collected, today=dt.date(2026, 11, 25)).tranche == "2027-Q1"


def test_when_everything_is_collected_nothing_is_next_and_the_schedule_shows_the_latest():
    collected = [tranche(p.tranche, p.window_start) for p in PAYMENTS]
    assert next_to_collect(collected, today=dt.date(2027, 2, 10)) is None
    assert schedule_from("3520212345672", collected, today=dt.date(2027, 2, 10)).next.tranche == (
        "2027-Q1"
    )


def test_a_failed_or_withheld_tranche_is_still_to_collect():
    for status in ("failed", "withheld"):
        payments = [
            tranche("2027-Q1", dt.date(2027, 2, 1), "scheduled"),
            tranche("2026-Q4", dt.date(2026, 11, 5), status),
        ]
        assert next_to_collect(payments, today=dt.date(2026, 11, 25)).tranche == "2026-Q4"
