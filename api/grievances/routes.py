"""`/v1/me/grievances`: the verified person files and follows their own grievances (SPEC §9)."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import CurrentBeneficiary, RegistrySessionDep, SessionDep, SettingsDep
from api.grievances import service
from api.grievances.schemas import GrievanceIn, GrievanceList, GrievanceOut
from api.grievances.ticket import normalise_ticket_id
from api.identity import Cnic
from api.problems import GRIEVANCE_NOT_FOUND, INVALID_REQUEST, Problem, documented
from api.registry import repository as registry_repository

router = APIRouter(prefix="/v1/me/grievances", tags=["grievances"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=GrievanceOut)
async def file_grievance(
    body: GrievanceIn,
    cnic: CurrentBeneficiary,
    session: SessionDep,
    registry: RegistrySessionDep,
    settings: SettingsDep,
) -> GrievanceOut:
    """File a grievance; its ticket id is what the person quotes on the phone."""
    found = await registry_repository.get_person_and_household(registry, cnic=cnic)
    try:
        grievance = await service.file_grievance(
            session,
            cnic=Cnic(cnic),
            category=body.category,
            description=body.description,
            channel="api",
            contact_id=None,
            language=None,
            district=found[1].district if found else None,
            sla_days=settings.grievance_sla_days,
        )
    except service.InvalidText as exc:
        # The body's own check (GrievanceIn) cleans the text as the service does: kept for a
        # text the two ever judge apart, answered as that check would answer.
        error = {"loc": ["body", "description"], "msg": str(exc), "type": "value_error"}
        raise Problem(
            422, "The request is not valid.", type_=INVALID_REQUEST, errors=[error]
        ) from None
    return GrievanceOut.from_grievance(grievance)


@router.get("", response_model=GrievanceList)
async def list_grievances(cnic: CurrentBeneficiary, session: SessionDep) -> GrievanceList:
    """The verified person's grievances, newest first."""
    grievances = await service.list_for_owner(session, cnic=cnic)
    return GrievanceList(grievances=[GrievanceOut.from_grievance(g) for g in grievances])


@router.get(
    "/{ticket_id}",
    response_model=GrievanceOut,
    responses=documented(GRIEVANCE_NOT_FOUND),
)
async def get_grievance(
    ticket_id: str, cnic: CurrentBeneficiary, session: SessionDep
) -> GrievanceOut:
    """One of the verified person's grievances; someone else's is simply not found."""
    canonical = normalise_ticket_id(ticket_id)
    grievance = (
        await service.get_for_owner(session, cnic=cnic, ticket_id=canonical) if canonical else None
    )
    if grievance is None:
        raise Problem(404, "No such grievance among yours.", type_=GRIEVANCE_NOT_FOUND)
    return GrievanceOut.from_grievance(grievance)
