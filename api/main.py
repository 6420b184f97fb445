"""The one ASGI application, `api.main:app`: routers, errors, and the lifespan that owns the
engines and Redis."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from api import agent, health, held, metrics, openapi, problems, surge
from api.eligibility import routes as eligibility_routes
from api.grievances import routes as grievance_routes
from api.grievances.escalation import run_escalations
from api.logs import install_masking
from api.me import routes as me_routes
from api.middleware import BodySizeLimit, JsonBodiesOnly, SecurityHeaders
from api.otp import routes as otp_routes
from api.outbox import routes as outbox_routes
from api.outbox.worker import EmbeddedWorker
from api.ratelimit.http import limit_request
from api.runtime import Runtime
from api.settings import Settings, get_settings
from api.surge import LoadShedding, ReadsAnsweredInTime
from api.webhooks import telegram, twilio, ussd

#: The order the API docs list their sections in (partners read the first ones).
OPENAPI_TAGS = [
    {"name": name}
    for name in ("eligibility", "verification", "me", "grievances", "webhooks", "health")
]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application; settings are read from the environment unless given."""
    settings = settings or get_settings()
    install_masking()
    # One gate per worker process: the middleware's, whose spare room answers held messages.
    gate = surge.worker_gate()
    overload = surge.Overload()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.create(settings)
        app.state.runtime = runtime
        app.state.rate_limiter = runtime.rate_limiter
        # One PTB Application per process when a bot token is set; start-up survives an
        # unreachable Telegram (the webhook retries then).
        app.state.telegram = await telegram.start_telegram(runtime)
        # Messages held in a surge are answered when this worker has room (api/held.py).
        app.state.held = held.Drainer(runtime, gate)
        app.state.held.start()
        # `make run` has no separate `rabta worker`: deliver the outbox from the API process.
        worker = EmbeddedWorker(settings, db=runtime.db) if settings.run_embedded_worker else None
        stop = asyncio.Event()
        escalations = None
        if worker:
            worker.start()
            escalations = asyncio.create_task(run_escalations(runtime, stop=stop))
        # What is loaded by now (modules, catalogs, the app itself: about 160,000 objects) lives
        # as long as the process: keep it out of the collector's full passes, each of which
        # would walk it all and stall a busy worker for ~100 ms (docs/performance.md). Only in
        # production: the collection it starts with costs as much, once per process.
        frozen = settings.is_production
        if frozen:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if frozen:
                gc.unfreeze()
            overload.close()
            stop.set()
            if escalations:
                await escalations
            if worker:
                await worker.stop()
            await app.state.held.stop()
            await telegram.stop_telegram(app.state.telegram)
            await runtime.close()

    app = FastAPI(
        title="Rabta",
        summary="Self-service for the beneficiaries of a cash-transfer programme.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        openapi_tags=OPENAPI_TAGS,
    )
    problems.install(app)
    openapi.install(app)  # problem responses and webhook bodies declared
    app.add_middleware(JsonBodiesOnly)
    # Inside the request metrics, which count a late read's 503 as the client got it.
    app.add_middleware(ReadsAnsweredInTime)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    # Before routing and body parsing: an overloaded worker answers 503 at once instead of
    # letting requests time out (api/surge.py).
    app.add_middleware(LoadShedding, gate=gate, overload=overload)
    # Outside the gate: a request it refuses is counted with its 503, and a request's latency
    # includes its wait in the gate's queue, as the client sees both.
    app.add_middleware(metrics.RequestMetrics)
    app.add_middleware(SecurityHeaders, hsts=settings.is_production)
    # The router tries routes in the order they are included, each with its own regex: the
    # webhooks, which carry nearly all of a surge's traffic, come first (no two paths overlap,
    # so the order changes nothing else; the docs list tags in OPENAPI_TAGS's order). The SMS
    # and USSD webhooks, plain Starlette routes, go before even the docs' own routes.
    app.router.routes[:0] = [twilio.route, ussd.route]
    app.include_router(outbox_routes.router)
    app.include_router(telegram.router)
    # Every /v1 call counts against its partner's quota or its client IP (SPEC §4). A look-up
    # counts its caller itself, with the CNIC's own limit, in one round trip (limit_lookup).
    limited = [Depends(limit_request)]
    app.include_router(eligibility_routes.router)
    app.include_router(otp_routes.router, dependencies=limited)
    app.include_router(me_routes.router, dependencies=limited)
    app.include_router(grievance_routes.router, dependencies=limited)
    app.include_router(health.router)
    app.include_router(metrics.router)
    agent.install(app, settings)  # the console at /agent: pages, static files, headers
    return app


def __getattr__(name: str) -> FastAPI:
    # `api.main:app` is built on first access, so importing this module reads no environment.
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)
