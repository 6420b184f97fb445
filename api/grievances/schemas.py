"""Grievance categories, statuses, the transitions between them, and the REST shapes (SPEC §9)."""

from __future__ import annotations

import datetime as dt
import enum
import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from api.db import utc
from api.registry.models import Grievance, GrievanceEvent

#: Longest description accepted from any channel.
MAX_DESCRIPTION = 1000


class Category(enum.StrEnum):
    PAYMENT_NOT_RECEIVED = "payment_not_received"
    DEDUCTION_BY_AGENT = "deduction_by_agent"
    BIOMETRIC_FAILURE = "biometric_failure"
    ELIGIBILITY_DISPUTE = "eligibility_dispute"
    DATA_CORRECTION = "data_correction"
    OTHER = "other"


class Status(enum.StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    REJECTED = "rejected"


#: Where each status may go next. Resolved and rejected grievances only reopen; nothing moves to
#: its own status (that would record a change that did not happen).
ALLOWED_TRANSITIONS: dict[Status, set[Status]] = {
    Status.OPEN: {Status.IN_PROGRESS, Status.ESCALATED, Status.RESOLVED, Status.REJECTED},
    Status.IN_PROGRESS: {Status.ESCALATED, Status.RESOLVED, Status.REJECTED},
    Status.ESCALATED: {Status.IN_PROGRESS, Status.RESOLVED, Status.REJECTED},
    Status.RESOLVED: {Status.OPEN},
    Status.REJECTED: {Status.OPEN},
}

#: Statuses whose SLA clock is running: past `due_at` they escalate.
ACTIVE_STATUSES: frozenset[Status] = frozenset({Status.OPEN, Status.IN_PROGRESS})
CLOSED_STATUSES: frozenset[Status] = frozenset({Status.RESOLVED, Status.REJECTED})


class Action(enum.StrEnum):
    """What a grievance event records."""

    FILED = "filed"
    STATUS_CHANGED = "status_changed"
    ESCALATED = "escalated"
    REOPENED = "reopened"
    NOTE = "note"
    INTERNAL_NOTE = "internal_note"
    ASSIGNED = "assigned"


#: Events the owner never sees: staff notes and who works on the case are the programme's business.
STAFF_ONLY_ACTIONS: frozenset[str] = frozenset({Action.INTERNAL_NOTE, Action.ASSIGNED})

# Trojan-source bidi embeddings/overrides/isolates: they make the console show text in an order
# other than the stored one. And the invisible characters with no part in any script's spelling
# (zero-width space, word joiner, byte-order mark): phones and copy-paste leave them behind, and
# they would let a description look empty, or two texts look alike, while differing.
_STRIPPED = re.compile("[\u202a-\u202e\u2066-\u2069\u200b\u2060\ufeff]")
# What the marks that stay (ZWNJ/ZWJ, which Urdu and Pashto spell words with, and the
# directional marks LRM/RLM/ALM) join or order nothing at either end of a text: trimmed there.
_EDGES = re.compile("^[\\s\u200c-\u200f\u061c]+|[\\s\u200c-\u200f\u061c]+$")


def clean_text(text: str) -> str:
    """NFC, no control characters except newlines, no bidi overrides, no invisible characters
    outside words, trimmed; empty when nothing visible is left (SPEC §2).

    Zero-width joiners and non-joiners stay inside words: in Urdu and Pashto they choose a
    letter's joined or separate form, so removing them changes the spelling. A text of nothing
    but format characters (category Cf) and spaces shows nothing, so it counts as empty and is
    refused like a blank one."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _STRIPPED.sub("", text)
    text = "".join(
        " " if ch == "\t" else ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc"
    )
    text = _EDGES.sub("", text)
    return text if any(_visible(ch) for ch in text) else ""


def _visible(ch: str) -> bool:
    return not ch.isspace() and unicodedata.category(ch) != "Cf"


#: SQLite hands DateTime(timezone=True) back naive; Rabta only ever stores UTC.
UtcDatetime = Annotated[dt.datetime, AfterValidator(utc)]


class GrievanceIn(BaseModel):
    """`POST /v1/me/grievances`: what the owner files. Nothing else: a field it does not take
    (a `cnic` a partner thinks it files for) is refused, as `/v1/otp`'s bodies refuse it,
    rather than dropped while the grievance is filed for the token's owner."""

    model_config = ConfigDict(extra="forbid")

    category: Category
    description: str = Field(min_length=1, max_length=MAX_DESCRIPTION)

    @field_validator("description", mode="before")
    @classmethod
    def _clean(cls, value: object) -> object:
        return clean_text(value) if isinstance(value, str) else value


class EventOut(BaseModel):
    """One step of a grievance's history as its owner sees it (no actor: staff stay unnamed)."""

    at: UtcDatetime
    action: str
    from_status: Status | None
    to_status: Status | None
    note: str | None

    @classmethod
    def from_event(cls, event: GrievanceEvent) -> EventOut:
        return cls(
            at=event.at,
            action=event.action,
            from_status=event.from_status,
            to_status=event.to_status,
            note=event.note,
        )


class GrievanceOut(BaseModel):
    """A grievance as its owner sees it (SPEC §9), history without staff-only events."""

    ticket_id: str
    category: Category
    status: Status
    created_at: UtcDatetime
    due_at: UtcDatetime
    events: list[EventOut]
    description: str
    updated_at: UtcDatetime

    @classmethod
    def from_grievance(cls, grievance: Grievance) -> GrievanceOut:
        """The owner's view; `grievance.events` must be loaded (every service read loads them)."""
        return cls(
            ticket_id=grievance.ticket_id,
            category=Category(grievance.category),
            status=Status(grievance.status),
            created_at=grievance.created_at,
            due_at=grievance.due_at,
            events=[
                EventOut.from_event(e)
                for e in grievance.events
                if e.action not in STAFF_ONLY_ACTIONS
            ],
            description=grievance.description,
            updated_at=grievance.updated_at,
        )


class GrievanceList(BaseModel):
    """`GET /v1/me/grievances`: the owner's grievances, newest first."""

    grievances: list[GrievanceOut]
