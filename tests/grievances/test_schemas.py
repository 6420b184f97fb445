"""Categories, statuses, transitions and the REST shapes."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from api.grievances.schemas import (
    ALLOWED_TRANSITIONS,
    MAX_DESCRIPTION,
    Category,
    GrievanceIn,
    GrievanceOut,
    Status,
    clean_text,
)
from api.registry.models import Grievance, GrievanceEvent
from api.settings import Settings


def test_values_are_the_spec_s() -> None:
    assert [c.value for c in Category] == [
        "payment_not_received",
        "deduction_by_agent",
        "biometric_failure",
        "eligibility_dispute",
        "data_correction",
        "other",
    ]
    assert [s.value for s in Status] == ["open", "in_progress", "escalated", "resolved", "rejected"]


def test_every_status_has_transitions_and_none_to_itself() -> None:
    assert set(ALLOWED_TRANSITIONS) == set(Status)
    for status, targets in ALLOWED_TRANSITIONS.items():
        assert status not in targets


def test_every_category_has_an_sla(settings: Settings) -> None:
    assert set(settings.grievance_sla_days) == {c.value for c in Category}


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("  Paisay nahi mile  ", "Paisay nahi mile"),
        ("line one\r\nline two", "line one\nline two"),
        ("a\tb", "a b"),
        ("bell\x07 and null\x00 gone", "bell and null gone"),
        ("\u202eevil\u202c text", "evil text"),  # bidi override (Trojan source)
        ("پیسے نہیں ملے", "پیسے نہیں ملے"),
        ("می\u200cخواهم", "می\u200cخواهم"),  # ZWNJ belongs to the word
    ],
)
def test_grievance_in_cleans_description(typed: str, stored: str) -> None:
    body = GrievanceIn.model_validate({"category": "other", "description": typed})
    assert body.description == stored
    assert clean_text(typed) == stored


@pytest.mark.parametrize(
    "body",
    [
        {"category": "other", "description": ""},
        {"category": "other", "description": "  \x00\x01 "},
        {"category": "other", "description": "x" * (MAX_DESCRIPTION + 1)},
        {"category": "lost_card", "description": "text"},
        {"category": "other"},
        {"category": "other", "description": 42},
    ],
)
def test_grievance_in_refuses(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        GrievanceIn.model_validate(body)


def test_grievance_in_accepts_the_longest() -> None:
    body = GrievanceIn(category=Category.OTHER, description="x" * MAX_DESCRIPTION)
    assert len(body.description) == MAX_DESCRIPTION


def test_grievance_out_hides_staff_events_and_makes_times_aware() -> None:
    naive = dt.datetime(2026, 11, 23, 9, 30)  # as SQLite returns it
    grievance = Grievance(
        ticket_id="G-7K3M9Q",
        cnic="3520212345672",
        category="payment_not_received",
        description="Paisay nahi mile",
        status="in_progress",
        channel="sms",
        created_at=naive,
        updated_at=naive,
        due_at=naive + dt.timedelta(days=7),
    )
    grievance.events = [
        GrievanceEvent(at=naive, actor="sms", action="filed", to_status="open"),
        GrievanceEvent(at=naive, actor="supervisor1", action="assigned", note="agent1"),
        GrievanceEvent(at=naive, actor="agent1", action="internal_note", note="caller was rude"),
        GrievanceEvent(
            at=naive,
            actor="agent1",
            action="status_changed",
            from_status="open",
            to_status="in_progress",
        ),
        GrievanceEvent(at=naive, actor="agent1", action="note", note="Bring your CNIC"),
    ]
    out = GrievanceOut.from_grievance(grievance).model_dump(mode="json")
    assert list(out)[:6] == ["ticket_id", "category", "status", "created_at", "due_at", "events"]
    assert out["created_at"] == "2026-11-23T09:30:00Z"
    assert [e["action"] for e in out["events"]] == ["filed", "status_changed", "note"]
    assert set(out["events"][0]) == {"at", "action", "from_status", "to_status", "note"}
    assert "caller was rude" not in str(out) and "agent1" not in str(out)
