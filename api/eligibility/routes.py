"""`GET /v1/eligibility/{cnic}`: the coarse tier, for anyone (SPEC §9)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from api.deps import RegistryConnectionDep, SettingsDep
from api.eligibility import service
from api.eligibility.schemas import CoarseEligibility
from api.identity import Cnic, InvalidCnic
from api.problems import (
    CNIC_LOOKUPS_EXHAUSTED,
    NOT_A_CNIC,
    TOO_MANY_LOOKUPS,
    Problem,
    documented,
)
from api.ratelimit.http import limit_lookup, limit_request

#: Every route here counts its caller itself (`looked_up_cnic`), with the CNIC it looks up: include
#: it without the `limit_request` dependency the other /v1 routers carry.
router = APIRouter(prefix="/v1", tags=["eligibility"])


def not_a_cnic() -> Problem:
    """The 422 for text that is not a CNIC."""
    return Problem(
        422,
        "A CNIC is 13 digits, the first one 1 to 7, written as 12345-1234567-1.",
        type_=NOT_A_CNIC,
    )


async def looked_up_cnic(cnic: str, request: Request, response: Response) -> Cnic:
    """The path's CNIC, after counting the caller's quota and the CNIC's own limit from all
    senders (SPEC §4) in one round trip; 422 when it is not a CNIC, counting the caller alone:
    text that names no CNIC spends no CNIC's look-ups.

    A dependency, so a refused look-up is answered before a registry connection is taken. The
    router carries no `limit_request` (main.py): this counts the caller instead."""
    try:
        parsed = Cnic.parse(cnic)
    except InvalidCnic:
        await limit_request(request, response)
        raise not_a_cnic() from None
    await limit_lookup(request, response, parsed)
    return parsed


LookedUpCnic = Annotated[Cnic, Depends(looked_up_cnic)]


@router.get(
    "/eligibility/{cnic}",
    response_model=CoarseEligibility,
    responses=documented(NOT_A_CNIC, TOO_MANY_LOOKUPS, CNIC_LOOKUPS_EXHAUSTED),
)
async def get_eligibility(
    cnic: LookedUpCnic, registry: RegistryConnectionDep, settings: SettingsDep
) -> CoarseEligibility:
    """Eligible, not eligible, not found or under review: nothing more without verification."""
    result = await service.coarse_eligibility(registry, cnic=cnic, cutoff=settings.pmt_cutoff)
    return CoarseEligibility(cnic_masked=result.cnic_masked, status=result.status)
