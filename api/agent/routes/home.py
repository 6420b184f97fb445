"""The console's first page: search a caller, and what is waiting for this member of staff."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.agent.deps import AccessDep, ConsoleDbDep, CurrentStaff
from api.agent.i18n import N_
from api.agent.pages import page
from api.agent.schemas import Role
from api.grievances import repository as grievances
from api.grievances.repository import QueueFilter
from api.grievances.schemas import Status

router = APIRouter(prefix="/agent")

WORKED = (Status.OPEN.value, Status.IN_PROGRESS.value, Status.ESCALATED.value)


@router.get("")
async def home(
    request: Request, staff: CurrentStaff, db: ConsoleDbDep, access: AccessDep
) -> Response:
    now = dt.datetime.now(dt.UTC)
    supervisor = staff.can(Role.SUPERVISOR)
    return await page(
        request,
        "home.html",
        staff=staff,
        title=N_("Callers"),
        mine=await grievances.count_queue(db, QueueFilter(statuses=WORKED, assigned_to=staff.id)),
        escalated=await grievances.count_queue(db, QueueFilter(statuses=(Status.ESCALATED.value,))),
        breached=await grievances.count_queue(db, QueueFilter(statuses=WORKED, overdue_at=now)),
        overrides=len(await access.pending_overrides()) if supervisor else 0,
    )
