"""Dependency aliases, defined once: routes declare what they need by type."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from api.runtime import Runtime
from api.settings import Settings


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_settings_dep(runtime: RuntimeDep) -> Settings:
    return runtime.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_registry_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """A read-only session on the registry (a replica when REGISTRY_DATABASE_URL is set)."""
    async with runtime.db.registry_sessions() as session:
        yield session


RegistrySessionDep = Annotated[AsyncSession, Depends(get_registry_session)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """A session on the primary; its work commits when the request succeeds (services never
    commit)."""
    async with runtime.db.sessions() as session, session.begin():
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
