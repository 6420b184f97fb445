"""`GET /v1/me`: the verified person's eligibility in full."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel

from api.eligibility.schemas import EligibilityStatus


class ProgrammeOut(BaseModel):
    programme: str
    name: str
    status: str


class MeOut(BaseModel):
    cnic_masked: str
    status: EligibilityStatus
    programmes: list[ProgrammeOut]
    district: str | None
    tehsil: str | None
    as_of: dt.date
