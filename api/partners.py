"""Partner apps' API keys (`rabta partner create`): shown once, stored only as a SHA-256 digest."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.registry.models import Partner
from api.settings import RateLimitRefused, one_rate_limit

#: Every key starts with this, so a leaked key is recognisable (secret scanners, logs).
KEY_PREFIX = "rbt_"
#: A generated key is 47 characters; anything much longer is not ours and needs no database trip.
_MAX_KEY_LENGTH = 128
_MAX_NAME_LENGTH = 80  # Partner.name is String(80)
_MAX_QUOTA_LENGTH = 32  # Partner.quota is String(32)


class PartnerError(ValueError):
    """A partner cannot be created as asked; the message says why."""


class PartnerExists(PartnerError):
    """Another partner already has this name."""


def hash_api_key(key: str) -> str:
    """The SHA-256 hex digest stored for `key` (the key has 256 random bits: no salt needed)."""
    return hashlib.sha256(key.encode()).hexdigest()


#: A partner's quota refused by the rule every rate limit meets (`one_rate_limit`), in the
#: words of `rabta partner create`.
_QUOTA_REFUSED = {
    "unreadable": "{quota!r} is not a rate limit; write it like 1000/minute or 50000/day",
    "several": "{quota!r} is several limits; a quota is one rate limit",
    "zero": "a quota of 0 refuses every call the partner makes; to stop a partner, "
    "use rabta partner revoke",
}


def validate_quota(quota: str) -> str:
    """`quota` stripped if it is one rate limit in `limits` notation (`1000/minute`) that lets
    calls through, else raise."""
    quota = quota.strip()
    try:
        one_rate_limit(quota)
    except RateLimitRefused as refused:
        raise PartnerError(_QUOTA_REFUSED[refused.kind].format(quota=quota)) from None
    if len(quota) > _MAX_QUOTA_LENGTH:
        raise PartnerError(f"a quota is at most {_MAX_QUOTA_LENGTH} characters")
    return quota


async def create_partner(session: AsyncSession, *, name: str, quota: str | None) -> str:
    """Add a partner and return its new API key, which is stored nowhere in clear."""
    name = name.strip()
    if not name or len(name) > _MAX_NAME_LENGTH:
        raise PartnerError(f"a partner name is 1 to {_MAX_NAME_LENGTH} characters")
    if await session.scalar(select(Partner.id).where(Partner.name == name)) is not None:
        raise PartnerExists(f"a partner named {name!r} already exists")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    partner = Partner(name=name, key_hash=hash_api_key(key))
    if quota is not None:
        partner.quota = validate_quota(quota)
    session.add(partner)
    try:
        await session.flush()
    except IntegrityError:  # created concurrently under the same name
        raise PartnerExists(f"a partner named {name!r} already exists") from None
    return key


async def find_partner_by_key(session: AsyncSession, key: str) -> Partner | None:
    """The partner holding `key`, active or not (callers check `active`), or None.

    Looking up by digest leaks no timing about the key: an index lookup on a hash reveals
    nothing usable about which key is right.
    """
    if not key.startswith(KEY_PREFIX) or len(key) > _MAX_KEY_LENGTH:
        return None
    partner: Partner | None = await session.scalar(
        select(Partner).where(Partner.key_hash == hash_api_key(key))
    )
    return partner
