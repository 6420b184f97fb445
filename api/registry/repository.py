"""Every registry query, in one place."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from api import hot
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


_HOUSEHOLDS = cast(Table, Household.__table__)
_PERSONS = cast(Table, Person.__table__)
#: Built once: asked millions of times (every eligibility answer), so no statement per call.
#: The look-up lane also reads it inside the contact's upsert (api/conversations/repository.py).
HOUSEHOLD_STATUS = (
    select(_HOUSEHOLDS.c.status, _HOUSEHOLDS.c.pmt_score, _PERSONS.c.mobile)
    .join(_PERSONS, _HOUSEHOLDS.c.household_id == _PERSONS.c.household_id)
    .where(_PERSONS.c.cnic == bindparam("cnic"))
)


#: A household's (status, PMT score) and the person's registered mobile: `household_status`.
Coarse = tuple[str, Any, str | None]


async def household_status(session: hot.Executor, *, cnic: str) -> Coarse | None:
    """(status, PMT score) of the household of the person with this CNIC, and the person's
    registered mobile (is the asker the person?), or None."""
    found = await hot.rows(session, HOUSEHOLD_STATUS, {"cnic": cnic})
    return (found[0][0], found[0][1], found[0][2]) if found else None


_REGISTERED_MOBILE = select(_PERSONS.c.mobile).where(_PERSONS.c.cnic == bindparam("cnic"))


async def registered_mobile(session: AsyncSession, *, cnic: str) -> tuple[bool, str | None]:
    """(in the registry, registered mobile) for a CNIC: one column by primary key, so a CNIC
    that exists costs the same as one that does not (`POST /v1/otp` must not tell them apart
    by its timing)."""
    connection = await session.connection()
    row = (await connection.execute(_REGISTERED_MOBILE, {"cnic": cnic})).first()
    return (row is not None, row[0] if row else None)


async def list_enrollments(session: AsyncSession, *, cnic: str) -> list[Enrollment]:
    """A person's programme enrollments, oldest first, and by programme among those of one day:
    one order every time, or USSD's pages of them (asked for one by one) could name a programme
    twice and skip another."""
    result = await session.scalars(
        select(Enrollment)
        .where(Enrollment.cnic == cnic)
        .order_by(Enrollment.since, Enrollment.programme)
    )
    return list(result)


async def list_persons_by_mobile(session: AsyncSession, *, mobile: str) -> list[Person]:
    """Everyone registered with this mobile number (households often share one phone)."""
    result = await session.scalars(
        select(Person).where(Person.mobile == mobile).order_by(Person.cnic)
    )
    return list(result)
