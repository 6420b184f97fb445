"""Helpers for the grievance tests: a fixed clock and a one-line way to file a grievance."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.grievances import service
from api.grievances.schemas import Category
from api.identity import Cnic
from api.registry.models import Grievance
from api.settings import Settings
from tests.conftest import ELIGIBLE_WIFE

#: The tests' "now": every clock is passed explicitly, nothing sleeps.
T0 = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)


def as_utc(moment: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes; they are UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=dt.UTC)


async def file_one(session: AsyncSession, settings: Settings, **overrides: Any) -> Grievance:
    """File a grievance for ELIGIBLE_WIFE over SMS at T0, unless told otherwise."""
    arguments: dict[str, Any] = {
        "cnic": Cnic.parse(ELIGIBLE_WIFE),
        "category": Category.PAYMENT_NOT_RECEIVED,
        "description": "Paisay nahi mile, campsite band thi",
        "channel": "sms",
        "contact_id": None,
        "language": "ur_Latn",
        "sla_days": settings.grievance_sla_days,
        "now": T0,
    }
    arguments.update(overrides)
    return await service.file_grievance(session, **arguments)
