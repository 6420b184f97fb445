"""The console's routes under /agent: one module per part of the console."""

from fastapi import APIRouter

from api.agent.deps import ReadableInput
from api.agent.routes import audit_log, auth, callers, dashboard, grievances, home, overrides

router = APIRouter(include_in_schema=False, dependencies=[ReadableInput])
for part in (home, auth, callers, grievances, overrides, dashboard, audit_log):
    # Each part's router has the prefix itself: FastAPI keeps an included router's prefix
    # apart from its routes, and the request metrics label a request by its route's own path.
    router.include_router(part.router)

__all__ = ["router"]
