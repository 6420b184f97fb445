"""Helpers for the grievance tests: a fixed clock, one-line ways to file a grievance and to
move it as an agent, and one to resolve it with its owner told, as the console does."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.db import Database
from api.grievances import service
from api.grievances.notify import owner_notifier
from api.grievances.schemas import Category, Status
from api.identity import Cnic
from api.registry.models import Grievance, OutboundMessage
from api.runtime import Runtime
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


async def change_as_agent(
    session: AsyncSession, settings: Settings, ticket_id: str, to: Status, **overrides: Any
) -> Grievance:
    """Move a grievance to `to` as agent1, with no note, at T0, unless told otherwise."""
    arguments: dict[str, Any] = {
        "ticket_id": ticket_id,
        "to": to,
        "actor": "agent1",
        "note": None,
        "sla_days": settings.grievance_sla_days,
        "now": T0,
    }
    arguments.update(overrides)
    return await service.change_status(session, **arguments)


async def resolve_telling_the_owner(
    runtime: Runtime, db: Database, ticket: str, *, actor: str = "supervisor1"
) -> None:
    """Resolve the grievance as a supervisor would, the owner's update enqueued with it."""
    async with db.transaction() as session:
        await service.change_status(
            session,
            ticket_id=ticket,
            to=Status.RESOLVED,
            actor=actor,
            note=None,
            sla_days={"other": 15},
            notify=owner_notifier(runtime, session),
        )


async def the_update(db: Database) -> OutboundMessage:
    """The one grievance update in the outbox."""
    async with db.sessions() as session:
        (message,) = list(
            await session.scalars(
                select(OutboundMessage).where(OutboundMessage.kind == "grievance_update")
            )
        )
    return message
