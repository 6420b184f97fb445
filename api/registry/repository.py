"""Every registry query, in one place."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.registry.models import Enrollment, Household, Person


async def get_person_and_household(
    session: AsyncSession, *, cnic: str
) -> tuple[Person, Household] | None:
    """The person with this CNIC and their household, or None."""
    row = (
        await session.execute(
            select(Person, Household)
            .join(Household, Household.household_id == Person.household_id)
            .where(Person.cnic == cnic)
        )
    ).first()
    return (row[0], row[1]) if row else None


async def household_status(session: AsyncSession, *, cnic: str) -> tuple[str, Any] | None:
    """(status, PMT score) of the household of the person with this CNIC, or None."""
    row = (
        await session.execute(
            select(Household.status, Household.pmt_score)
            .join(Person, Household.household_id == Person.household_id)
            .where(Person.cnic == cnic)
        )
    ).first()
    return (row[0], row[1]) if row else None


async def list_enrollments(session: AsyncSession, *, cnic: str) -> list[Enrollment]:
    """A person's programme enrollments, oldest first."""
    result = await session.scalars(
        select(Enrollment).where(Enrollment.cnic == cnic).order_by(Enrollment.since)
    )
    return list(result)


async def list_persons_by_mobile(session: AsyncSession, *, mobile: str) -> list[Person]:
    """Everyone registered with this mobile number (households often share one phone)."""
    result = await session.scalars(
        select(Person).where(Person.mobile == mobile).order_by(Person.cnic)
    )
    return list(result)
