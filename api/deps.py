"""Dependency aliases, defined once: routes declare what they need by type."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from api.otp.service import OtpUnavailable
from api.problems import TOKEN_INVALID, TOKEN_REQUIRED, VERIFICATION_UNAVAILABLE, Problem
from api.runtime import Runtime
from api.settings import Settings


def runtime_of(request: Request) -> Runtime:
    """The application's runtime (created in the lifespan)."""
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_runtime(request: Request) -> Runtime:
    return runtime_of(request)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_settings_dep(runtime: RuntimeDep) -> Settings:
    return runtime.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_registry_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """A read-only session on the registry (a replica when REGISTRY_DATABASE_URL is set)."""
    async with runtime.db.registry_sessions() as session:
        yield session


RegistrySessionDep = Annotated[AsyncSession, Depends(get_registry_session)]


async def get_registry_connection(runtime: RuntimeDep) -> AsyncIterator[AsyncConnection]:
    """A bare connection to the registry in autocommit, for a route whose reads all run on the
    driver (api/hot.py): no session to build and close per request."""
    async with runtime.db.registry_reads() as connection:
        yield connection


RegistryConnectionDep = Annotated[AsyncConnection, Depends(get_registry_connection)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """A session on the primary; its work commits when the request succeeds (services never
    commit)."""
    async with runtime.db.sessions() as session, session.begin():
        yield session


#: Commits before the response leaves (function scope), so the client's next request sees it.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


_bearer = HTTPBearer(auto_error=False, description="Token from POST /v1/otp/verify")


async def get_current_beneficiary(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The CNIC the request's bearer token was issued for (401 without a live token)."""
    challenge = {"WWW-Authenticate": 'Bearer realm="rabta"'}
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Problem(
            401,
            "A bearer token from POST /v1/otp/verify is required.",
            type_=TOKEN_REQUIRED,
            headers=challenge,
        )
    try:
        cnic = await runtime.tokens.resolve(credentials.credentials)
    except OtpUnavailable:
        raise Problem(
            503,
            "Verification is unavailable for a moment.",
            type_=VERIFICATION_UNAVAILABLE,
            headers={"Retry-After": "30"},
        ) from None
    if cnic is None:
        detail = "The token has expired or is not valid."
        raise Problem(401, detail, type_=TOKEN_INVALID, headers=challenge)
    return cnic


#: The verified person's CNIC (13 digits); never taken from the URL.
CurrentBeneficiary = Annotated[str, Depends(get_current_beneficiary)]
