"""The console's dependency aliases: who is signed in, what their role allows, CSRF checks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from api.agent import csrf, repository
from api.agent.access import CallerAccess
from api.agent.errors import ConsoleError, LoginRequired
from api.agent.i18n import N_
from api.agent.schemas import Role
from api.agent.sessions import ConsoleSession, SessionStore, cookie_name
from api.db import dialect_of
from api.deps import RuntimeDep, SettingsDep
from api.surge import get_surge_settings

#: Query parameters read as a place in a list (`pages.Cursor`): anything else in them, NUL
#: included, is no place at all and shows the list's first page, never an error.
_CURSORS = frozenset({"after", "before"})


async def readable_input(request: Request) -> None:
    """Refuse a query or a form holding NUL (U+0000) with a page saying so: PostgreSQL text can
    neither store nor compare it, so a filter or a username holding one failed in the database
    as a 500. Nobody types it; a crafted link or a paste of binary text carries it."""
    fields = [(k, v) for k, v in request.query_params.multi_items() if k not in _CURSORS]
    if request.method == "POST":
        form = await request.form()
        fields += [(name, value) for name, value in form.multi_items() if isinstance(value, str)]
    if any("\x00" in name or "\x00" in value for name, value in fields):
        raise ConsoleError(
            400,
            N_(
                "The address or the form holds a character the console cannot read. Go back "
                "and type it again."
            ),
        )


#: Put on the console's router: every route's query and form are checked first.
ReadableInput = Depends(readable_input)


def get_sessions(runtime: RuntimeDep) -> SessionStore:
    return SessionStore(runtime.redis, runtime.settings)


SessionsDep = Annotated[SessionStore, Depends(get_sessions)]


async def get_console_session(
    runtime: RuntimeDep, sessions: SessionsDep
) -> AsyncIterator[AsyncSession]:
    """A session on the primary whose work commits when the request succeeds; the messages
    the request keeps for the next page ("Grievance G-… filed") are kept only once it has."""
    sessions.defer_flashes()
    async with runtime.db.sessions() as session, session.begin():
        if dialect_of(session) == "postgresql":
            # A database that stalls (a lock held too long, a partition) rather than refusing:
            # the page says so after RABTA_SURGE_ANSWER_WITHIN_MS, as a /v1 read does, instead
            # of the agent waiting on a blank page while her caller waits on the line. The
            # cancelled statement counts as the database away (the console's 503 page); a CSV
            # export streams from its own session, without this bound.
            within = get_surge_settings().answer_within_ms
            await session.execute(text(f"SET LOCAL statement_timeout = {int(within)}"))
        yield session
    await sessions.write_deferred()


#: A session on the primary that commits *before* the response is sent ("function" scope), so
#: the page a redirect leads to always sees what the form changed, and tells of it only then.
ConsoleDbDep = Annotated[AsyncSession, Depends(get_console_session, scope="function")]


def get_access(runtime: RuntimeDep) -> CallerAccess:
    return CallerAccess(runtime.redis, runtime.settings)


AccessDep = Annotated[CallerAccess, Depends(get_access)]


@dataclass(frozen=True)
class Staff:
    """The signed-in member of staff, as this request found them in the database."""

    id: int
    username: str
    role: Role
    session: ConsoleSession
    session_id: str

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_token

    def can(self, role: Role | str) -> bool:
        """True when this member of staff's role includes `role` (templates pass its name)."""
        return self.role.at_least(Role(role))


async def current_staff(
    request: Request, sessions: SessionsDep, db: ConsoleDbDep, settings: SettingsDep
) -> Staff:
    """The live session's member of staff; LoginRequired without one. The account is read on
    every request, so a deactivated account or a changed role takes effect at once."""
    session_id = request.cookies.get(cookie_name(settings), "")
    session = await sessions.load(session_id) if session_id else None
    if session is None:
        raise LoginRequired
    agent = await repository.get_agent(db, agent_id=session.agent_id)
    if agent is None or not agent.active:
        await sessions.end(session_id)
        raise LoginRequired
    staff = Staff(agent.id, agent.username, Role(agent.role), session, session_id)
    request.state.staff = staff  # error pages show the signed-in navigation
    return staff


CurrentStaff = Annotated[Staff, Depends(current_staff)]


def require_role(role: Role) -> Callable[[Staff], Awaitable[Staff]]:
    async def check(staff: CurrentStaff) -> Staff:
        if not staff.can(role):
            raise ConsoleError(
                403,
                N_("This page is for supervisors.")
                if role is Role.SUPERVISOR
                else N_("This page is for admins."),
            )
        return staff

    return check


SupervisorStaff = Annotated[Staff, Depends(require_role(Role.SUPERVISOR))]
AdminStaff = Annotated[Staff, Depends(require_role(Role.ADMIN))]


async def check_csrf(request: Request, staff: CurrentStaff, settings: SettingsDep) -> None:
    """Refuse a post without this session's token, or sent from another site's page."""
    given = await csrf.submitted_token(request)
    if not csrf.tokens_match(staff.csrf_token, given) or not csrf.same_origin(request, settings):
        raise ConsoleError(
            403, N_("This form has expired or did not come from the console. Reload the page.")
        )


#: Put on every POST route: `dependencies=[CsrfChecked]`.
CsrfChecked = Depends(check_csrf)
