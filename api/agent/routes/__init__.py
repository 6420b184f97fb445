"""The console's routes under /agent: one module per part of the console."""

from fastapi import APIRouter

from api.agent.routes import audit_log, auth, callers, dashboard, grievances, home, overrides

router = APIRouter(include_in_schema=False)
for part in (home, auth, callers, grievances, overrides, dashboard, audit_log):
    router.include_router(part.router, prefix="/agent")

__all__ = ["router"]
