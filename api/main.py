"""The one ASGI application, `api.main:app`: routers, errors, and the lifespan that owns the
engines and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from api import health, metrics, problems
from api.eligibility import routes as eligibility_routes
from api.grievances import routes as grievance_routes
from api.logs import install_masking
from api.me import routes as me_routes
from api.middleware import BodySizeLimit, JsonBodiesOnly
from api.otp import routes as otp_routes
from api.ratelimit.http import limit_request
from api.runtime import Runtime
from api.settings import Settings, get_settings
from api.webhooks import twilio


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application; settings are read from the environment unless given."""
    settings = settings or get_settings()
    install_masking()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.create(settings)
        app.state.runtime = runtime
        app.state.rate_limiter = runtime.rate_limiter
        try:
            yield
        finally:
            await runtime.close()

    app = FastAPI(
        title="Rabta",
        summary="Self-service for the beneficiaries of a cash-transfer programme.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    problems.install(app)
    app.add_middleware(JsonBodiesOnly)
    app.add_middleware(metrics.RequestMetrics)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.include_router(health.router)
    app.include_router(metrics.router)
    # Every /v1 call counts against its partner's quota or its client IP (SPEC §4).
    limited = [Depends(limit_request)]
    app.include_router(eligibility_routes.router, dependencies=limited)
    app.include_router(otp_routes.router, dependencies=limited)
    app.include_router(me_routes.router, dependencies=limited)
    app.include_router(grievance_routes.router, dependencies=limited)
    app.include_router(twilio.router)
    return app


def __getattr__(name: str) -> FastAPI:
    # `api.main:app` is built on first access, so importing this module reads no environment.
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)
