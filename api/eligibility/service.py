"""Eligibility by CNIC (SPEC §9): not_found, under_review, else the PMT cut-off decides."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.eligibility.schemas import EligibilityResult, EligibilityStatus, ProgrammeState
from api.hot import Executor
from api.identity import Cnic
from api.registry import repository
from api.registry.models import Household, HouseholdStatus


def decide(household: Household | None, *, cutoff: float) -> EligibilityStatus:
    """The coarse status of a person in `household` (None: not in the registry)."""
    if household is None:
        return EligibilityStatus.NOT_FOUND
    return decide_status(household.status, household.pmt_score, cutoff=cutoff)


def decide_status(status: str, pmt_score: Any, *, cutoff: float) -> EligibilityStatus:
    """The coarse status of a registered household from its status and PMT score."""
    if status == HouseholdStatus.UNDER_REVIEW:
        return EligibilityStatus.UNDER_REVIEW
    if float(pmt_score) <= cutoff:
        return EligibilityStatus.ELIGIBLE
    return EligibilityStatus.NOT_ELIGIBLE


def coarse_result(
    cnic: Cnic, coarse: repository.Coarse | None, *, cutoff: float
) -> EligibilityResult:
    """The answer anyone may have, from `repository.household_status`'s (status, PMT score,
    registered mobile)."""
    if coarse is None:
        return EligibilityResult(cnic.digits, cnic.masked, EligibilityStatus.NOT_FOUND)
    status = decide_status(coarse[0], coarse[1], cutoff=cutoff)
    return EligibilityResult(cnic.digits, cnic.masked, status, mobile=coarse[2])


async def coarse_eligibility(executor: Executor, *, cnic: Cnic, cutoff: float) -> EligibilityResult:
    """The coarse answer alone: the question 8171 gets by the million, two columns by primary
    key, no ORM objects (on a session or a bare connection)."""
    coarse = await repository.household_status(executor, cnic=cnic.digits)
    return coarse_result(cnic, coarse, cutoff=cutoff)


async def check_eligibility(
    session: AsyncSession, *, cnic: Cnic, cutoff: float, full: bool = False
) -> EligibilityResult:
    """Eligibility of `cnic`; with `full`, also programmes and district (verified callers only)."""
    if not full:
        return await coarse_eligibility(session, cnic=cnic, cutoff=cutoff)
    found = await repository.get_person_and_household(session, cnic=cnic.digits)
    household = found[1] if found else None
    status = decide(household, cutoff=cutoff)
    if household is None:
        return EligibilityResult(cnic=cnic.digits, cnic_masked=cnic.masked, status=status)
    return EligibilityResult(
        cnic=cnic.digits,
        cnic_masked=cnic.masked,
        status=status,
        programmes=await programmes_of(session, cnic=cnic.digits),
        district=household.district,
        tehsil=household.tehsil,
        mobile=found[0].mobile if found else None,
    )


async def programmes_of(session: AsyncSession, *, cnic: str) -> tuple[ProgrammeState, ...]:
    """The programmes a person is enrolled in, with their state, oldest first (private)."""
    enrollments = await repository.list_enrollments(session, cnic=cnic)
    return tuple(ProgrammeState(e.programme, e.status) for e in enrollments)
