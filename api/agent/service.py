"""Staff accounts: creating them, signing in with a lockout, and the demo logins of `make run`.

Nothing here commits: the caller's transaction does.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from api.agent import repository
from api.agent.passwords import (
    MAX_PASSWORD_LENGTH,
    check_strength,
    hash_password_async,
    needs_rehash,
    verify_password_async,
)
from api.agent.schemas import Role
from api.db import Database, utc
from api.registry.models import Agent
from api.settings import Settings, get_settings

#: Failed logins in a row that lock an account, and for how long.
LOCKOUT_AFTER = 5
LOCKOUT_FOR = dt.timedelta(minutes=15)

#: The development-only password of the demo logins `rabta serve --demo` prints.
DEMO_PASSWORD = "rabta-demo-console"  # noqa: S105 - refused in production, see ensure_demo_agents
DEMO_AGENTS: dict[str, Role] = {
    "agent": Role.AGENT,
    "supervisor": Role.SUPERVISOR,
    "admin": Role.ADMIN,
}

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


class AccountError(Exception):
    """Base of the account errors."""


class InvalidUsername(AccountError, ValueError):
    """Usernames are 2–64 lower-case letters, digits, dots, dashes and underscores."""


class UsernameTaken(AccountError):
    """Another account has this username."""


class UnknownAccount(AccountError, LookupError):
    """No account has this username."""


class DemoRefused(AccountError):
    """Demo logins with a published password are refused in production."""


def normalise_username(text: str) -> str:
    """The stored form of a username: trimmed and case-folded."""
    return text.strip().casefold()


async def create_agent(session: AsyncSession, *, username: str, password: str, role: Role) -> Agent:
    """A new active account; raises InvalidUsername, UsernameTaken or WeakPassword."""
    name = normalise_username(username)
    if not _USERNAME.match(name):
        raise InvalidUsername(username)
    check_strength(password)
    if await repository.get_agent_by_username(session, username=name) is not None:
        raise UsernameTaken(name)
    agent = Agent(
        username=name,
        password_hash=await hash_password_async(password),
        role=Role(role).value,
        active=True,
        failed_logins=0,
        locked_until=None,
    )
    session.add(agent)
    await session.flush()
    return agent


async def set_password(session: AsyncSession, *, username: str, password: str) -> Agent:
    """Replace an account's password and lift any lock; raises UnknownAccount, WeakPassword."""
    check_strength(password)
    agent = await repository.get_agent_by_username(session, username=normalise_username(username))
    if agent is None:
        raise UnknownAccount(username)
    agent.password_hash = await hash_password_async(password)
    agent.failed_logins = 0
    agent.locked_until = None
    await session.flush()
    return agent


async def set_active(session: AsyncSession, *, username: str, active: bool) -> Agent:
    """Switch an account on or off (an inactive account's sessions stop at their next request)."""
    agent = await repository.get_agent_by_username(session, username=normalise_username(username))
    if agent is None:
        raise UnknownAccount(username)
    agent.active = active
    if active:
        agent.failed_logins = 0
        agent.locked_until = None
    await session.flush()
    return agent


class LoginOutcome(enum.StrEnum):
    SIGNED_IN = "signed_in"
    REFUSED = "refused"  # unknown username, wrong password or inactive account
    LOCKED = "locked"  # too many failures: the password was not even checked


@dataclass(frozen=True)
class LoginResult:
    outcome: LoginOutcome
    agent: Agent | None = None
    #: The failure that locked the account (so it can be audited as such).
    locked_now: bool = False


async def authenticate(
    session: AsyncSession, *, username: str, password: str, now: dt.datetime | None = None
) -> LoginResult:
    """Check a login. Five failures in a row lock the account for fifteen minutes; while it is
    locked even the right password is refused. Failures are counted in `session`, so the caller
    must commit a refusal too."""
    at = now or dt.datetime.now(dt.UTC)
    name = normalise_username(username)
    agent = (
        await repository.get_agent_by_username(session, username=name)
        if 0 < len(name) <= 64 and len(password) <= MAX_PASSWORD_LENGTH
        else None
    )
    if agent is None or not agent.active:
        await verify_password_async(None, password)  # same time as a real check
        return LoginResult(LoginOutcome.REFUSED)
    locked_until = utc(agent.locked_until) if agent.locked_until else None
    if locked_until is not None and locked_until > at:
        return LoginResult(LoginOutcome.LOCKED, agent)
    if not await verify_password_async(agent.password_hash, password):
        failures = await repository.count_failed_login(session, agent_id=agent.id)
        if failures >= LOCKOUT_AFTER:
            await repository.lock_agent(session, agent_id=agent.id, until=at + LOCKOUT_FOR)
            return LoginResult(LoginOutcome.REFUSED, agent, locked_now=True)
        return LoginResult(LoginOutcome.REFUSED, agent)
    if agent.failed_logins or agent.locked_until is not None:
        await repository.clear_failed_logins(session, agent_id=agent.id)
    if needs_rehash(agent.password_hash):
        agent.password_hash = await hash_password_async(password)
    return LoginResult(LoginOutcome.SIGNED_IN, agent)


async def ensure_demo_agents(db: Database, *, settings: Settings | None = None) -> dict[str, str]:
    """Create the `agent`, `supervisor` and `admin` demo logins that are missing (existing ones
    are left as they are); returns username → role. Refuses in production: the password is
    published in the README and printed by `make run`."""
    settings = settings or get_settings()
    if settings.is_production:
        raise DemoRefused("demo logins have a published password: refused in production")
    async with db.transaction() as session:
        for username, role in DEMO_AGENTS.items():
            if await repository.get_agent_by_username(session, username=username) is None:
                await create_agent(session, username=username, password=DEMO_PASSWORD, role=role)
    return {username: role.value for username, role in DEMO_AGENTS.items()}
