"""Bearer tokens for `/v1/me`: opaque, random, bound to one CNIC, short-lived, kept in Redis
(only their hash, beside the CNIC sealed: api/sealed.py), so they can be revoked and never carry
personal data. A token whose CNIC does not open (the secret key changed, the value was altered
or moved from another token's key, or a release before sealing wrote it) is no token: 401."""

from __future__ import annotations

import hashlib
import secrets

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from api.otp.service import unavailable
from api.sealed import sealer_for


class BeneficiaryTokens:
    def __init__(self, redis: aioredis.Redis, *, ttl_seconds: int, secret: str) -> None:
        self._redis = redis
        self.ttl_seconds = ttl_seconds
        self._sealer = sealer_for(secret)

    @staticmethod
    def _key(token: str) -> str:
        # Not the key the release before sealing gave the same token (the SHA-256 of the token
        # alone): while both run (a rolling upgrade), each refuses the other's tokens (401)
        # rather than read a sealed value as a CNIC.
        return "rabta:token:" + hashlib.sha256(b"sealed:" + token.encode()).hexdigest()

    async def issue(self, *, cnic: str) -> str:
        """A new token for `cnic`."""
        token = "rbt." + secrets.token_urlsafe(32)
        key = self._key(token)
        try:
            await self._redis.set(key, self._sealer.seal(cnic, where=key), ex=self.ttl_seconds)
        except RedisError as exc:
            raise unavailable(exc) from exc
        return token

    async def resolve(self, token: str) -> str | None:
        """The CNIC a live token is bound to, or None."""
        if not token.startswith("rbt.") or len(token) > 100:
            return None
        key = self._key(token)
        try:
            value = await self._redis.get(key)
        except RedisError as exc:
            raise unavailable(exc) from exc
        return self._sealer.unseal(value, where=key)

    async def revoke(self, token: str) -> None:
        try:
            await self._redis.delete(self._key(token))
        except RedisError as exc:
            raise unavailable(exc) from exc
