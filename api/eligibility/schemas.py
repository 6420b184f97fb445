"""Eligibility answers: the coarse tier anyone may learn, the full one for the verified person."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from pydantic import BaseModel


class EligibilityStatus(enum.StrEnum):
    ELIGIBLE = "eligible"
    NOT_ELIGIBLE = "not_eligible"
    NOT_FOUND = "not_found"
    UNDER_REVIEW = "under_review"


@dataclass(frozen=True, slots=True)
class ProgrammeState:
    programme: str
    status: str


@dataclass(frozen=True, slots=True)
class EligibilityResult:
    """What the registry says about one CNIC; `programmes`, `district` and `mobile` are
    private (`mobile`, the registered one, tells whether the asker is the person)."""

    cnic: str
    cnic_masked: str
    status: EligibilityStatus
    programmes: tuple[ProgrammeState, ...] = field(default=())
    district: str | None = None
    tehsil: str | None = None
    mobile: str | None = None


class CoarseEligibility(BaseModel):
    """`GET /v1/eligibility/{cnic}`: the tier anyone may learn, as 8171 answers it."""

    cnic_masked: str
    status: EligibilityStatus
