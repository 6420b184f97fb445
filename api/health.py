"""`/healthz` (the process is alive) and `/readyz` (it can reach the database and Redis)."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from api.deps import RuntimeDep
from api.runtime import Runtime

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(2):
            await _database_answers(runtime)
        checks["database"] = "ok"
    except Exception as exc:
        log.warning("readiness: database unreachable: %s", type(exc).__name__)
        checks["database"] = "unreachable"
    try:
        async with asyncio.timeout(2):
            await runtime.redis.ping()
        checks["redis"] = "ok" if runtime.settings.redis_url else "in-process"
    except Exception as exc:
        log.warning("readiness: redis unreachable: %s", type(exc).__name__)
        checks["redis"] = "unreachable"
    ready = all(v in ("ok", "in-process") for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


async def _database_answers(runtime: Runtime) -> None:
    """`SELECT 1`, asked once more on a new connection when the pool's was one the server
    dropped (a restart, a failover): SQLAlchemy discards the pool's old connections at that
    failure, and a database that is back is not reported unreachable for it."""
    for attempt in (1, 2):
        try:
            async with runtime.db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return
        except DBAPIError as exc:
            if attempt == 2 or not exc.connection_invalidated:
                raise
