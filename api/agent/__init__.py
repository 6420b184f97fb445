"""The agent and supervisor console (SPEC §6 `/agent/...`): server-rendered pages for call-center
staff. `install(app)` adds its routes, static files, security headers and error pages."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError
from starlette.staticfiles import StaticFiles

from api.agent.access import AccessUnavailable
from api.agent.errors import (
    ConsoleError,
    LoginRequired,
    console_error,
    console_page_instead,
    login_required,
    not_found,
    unavailable,
)
from api.agent.pages import STATIC_DIR, STATIC_PATH
from api.agent.routes import router
from api.agent.security import ConsoleHeaders
from api.agent.service import ensure_demo_agents
from api.agent.sessions import SessionsUnavailable
from api.problems import UNWRAPPED_UNAVAILABLE
from api.settings import Settings


def install(app: FastAPI, settings: Settings) -> None:
    """Serve the console from `app`."""
    app.include_router(router)
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="agent-static")
    # Last, so it only catches console paths that nothing above served.
    app.add_api_route("/agent/{rest:path}", not_found, methods=["GET"], include_in_schema=False)
    app.add_middleware(ConsoleHeaders, hsts=settings.is_production)
    app.add_exception_handler(ConsoleError, console_error)
    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(SessionsUnavailable, unavailable)
    app.add_exception_handler(AccessUnavailable, unavailable)
    # After api.problems.install: its handlers answer, and a console page stands in for its JSON.
    for failure in (DBAPIError, *UNWRAPPED_UNAVAILABLE, Exception):
        problem = app.exception_handlers.get(failure)
        if problem is not None:
            app.add_exception_handler(failure, console_page_instead(problem))


__all__ = ["ensure_demo_agents", "install"]
