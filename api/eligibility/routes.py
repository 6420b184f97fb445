"""`GET /v1/eligibility/{cnic}`: the coarse tier, for anyone (SPEC §9)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import RegistryConnectionDep, SettingsDep
from api.eligibility import service
from api.eligibility.schemas import CoarseEligibility
from api.identity import Cnic, InvalidCnic
from api.problems import Problem

router = APIRouter(prefix="/v1", tags=["eligibility"])

NOT_A_CNIC = "https://rabta.example/problems/not-a-cnic"


def not_a_cnic() -> Problem:
    """The 422 for text that is not a CNIC."""
    return Problem(
        422,
        "A CNIC is 13 digits, the first one 1 to 7, written as 12345-1234567-1.",
        title="Not a CNIC",
        type_=NOT_A_CNIC,
    )


@router.get(
    "/eligibility/{cnic}",
    response_model=CoarseEligibility,
    responses={422: {"description": "Not a CNIC", "content": {"application/problem+json": {}}}},
)
async def get_eligibility(
    cnic: str, registry: RegistryConnectionDep, settings: SettingsDep
) -> CoarseEligibility:
    """Eligible, not eligible, not found or under review: nothing more without verification."""
    try:
        parsed = Cnic.parse(cnic)
    except InvalidCnic:
        raise not_a_cnic() from None
    result = await service.coarse_eligibility(registry, cnic=parsed, cutoff=settings.pmt_cutoff)
    return CoarseEligibility(cnic_masked=result.cnic_masked, status=result.status)
