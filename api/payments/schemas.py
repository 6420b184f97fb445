"""Payment schedules: what the verified person may know about their money."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from pydantic import BaseModel


@dataclass(frozen=True, slots=True)
class Tranche:
    payment_id: str
    programme: str
    tranche: str
    amount_pkr: int
    window_start: dt.date
    window_end: dt.date
    mode: str
    place: str
    status: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class PaymentSchedule:
    """The next tranche (or the latest, when none is coming) and the recent history."""

    cnic_masked: str
    next: Tranche | None
    recent: tuple[Tranche, ...] = field(default=())


class PaymentOut(BaseModel):
    payment_id: str
    programme: str
    tranche: str
    amount_pkr: int
    window_start: dt.date
    window_end: dt.date
    mode: str
    place: str
    status: str
    reason: str | None


class PaymentsOut(BaseModel):
    """`GET /v1/me/payments`: every payment, newest window first."""

    payments: list[PaymentOut]
