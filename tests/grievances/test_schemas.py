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


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("\ufeffPaisay\u200b nahi\u2060 mile", "Paisay nahi mile"),  # BOM, ZWSP, word joiner
        ("\u200cپیسے نہیں ملے\u200d\u200f ", "پیسے نہیں ملے"),  # joiners at the ends join nothing
        ("نہیں\u200cملے", "نہیں\u200cملے"),  # a ZWNJ inside Urdu text is its spelling
        ("\u200fپیسے\u200e 500 روپے", "پیسے\u200e 500 روپے"),  # a mark inside orders the number
    ],
)
def test_invisible_characters_go_except_those_words_are_spelt_with(typed: str, stored: str) -> None:
    assert clean_text(typed) == stored


@pytest.mark.parametrize(
    "invisible",
    ["\u200b", "\ufeff", "\u2060 \u2060", "\u200c", "\u200d\u200c", "\u200e \u200f", "\u2061"],
)
def test_a_description_of_invisible_characters_alone_is_empty(invisible: str) -> None:
    """SPEC §2: zero-width characters are stripped; what is left of such a text shows nothing."""
    assert clean_text(invisible) == ""
    with pytest.raises(ValidationError):
        GrievanceIn.model_validate({"category": "other", "description": invisible})


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
