"""Staff passwords: argon2id hashes (RFC 9106 low-memory parameters), never stored or logged
in the clear. Hashing costs ~64 MiB and tens of milliseconds, so it runs off the event loop."""

from __future__ import annotations

import asyncio
import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY

#: Shorter passwords are refused when an account is created or its password changed.
MIN_PASSWORD_LENGTH = 12
#: Longer ones too: argon2 would take them, but nobody types 256 characters on purpose.
MAX_PASSWORD_LENGTH = 256

#: argon2id, 3 passes over 64 MiB with 4 lanes: RFC 9106's "second recommended option", for
#: servers that cannot spare 2 GiB per login.
PARAMETERS = RFC_9106_LOW_MEMORY
_hasher = PasswordHasher.from_parameters(PARAMETERS)


class WeakPassword(ValueError):
    """The password is too short or too long."""


def check_strength(password: str) -> None:
    """Raise WeakPassword unless the password is of an acceptable length."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"a password has at most {MAX_PASSWORD_LENGTH} characters")


def hash_password(password: str) -> str:
    """An argon2id hash of `password` (salted, with its parameters inside)."""
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """True when `password` matches `stored_hash`; a malformed hash is simply a mismatch."""
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's."""
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


@cache
def _decoy_hash() -> str:
    return hash_password(secrets.token_urlsafe(24))


def _verify_decoy(password: str) -> None:
    verify_password(_decoy_hash(), password)


async def verify_password_async(stored_hash: str | None, password: str) -> bool:
    """`verify_password` in a thread; with no hash (unknown user) it checks a decoy, so the
    answer takes as long whether or not the username exists."""
    if stored_hash is None:
        await asyncio.to_thread(_verify_decoy, password)
        return False
    return await asyncio.to_thread(verify_password, stored_hash, password)


async def hash_password_async(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)
