"""Bearer tokens for `/v1/me`: opaque, random, bound to one CNIC, short-lived, kept in Redis
(only their hash), so they can be revoked and never carry personal data."""

from __future__ import annotations

import hashlib
import secrets

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from api.otp.service import unavailable


class BeneficiaryTokens:
    def __init__(self, redis: aioredis.Redis, *, ttl_seconds: int) -> None:
        self._redis = redis
        self.ttl_seconds = ttl_seconds

    @staticmethod
    def _key(token: str) -> str:
        return "rabta:token:" + hashlib.sha256(token.encode()).hexdigest()

    async def issue(self, *, cnic: str) -> str:
        """A new token for `cnic`."""
        token = "rbt." + secrets.token_urlsafe(32)
        try:
            await self._redis.set(self._key(token), cnic, ex=self.ttl_seconds)
        except RedisError as exc:
            raise unavailable(exc) from exc
        return token

    async def resolve(self, token: str) -> str | None:
        """The CNIC a live token is bound to, or None."""
        if not token.startswith("rbt.") or len(token) > 100:
            return None
        try:
            value = await self._redis.get(self._key(token))
        except RedisError as exc:
            raise unavailable(exc) from exc
        return str(value) if value else None

    async def revoke(self, token: str) -> None:
        try:
            await self._redis.delete(self._key(token))
        except RedisError as exc:
            raise unavailable(exc) from exc
