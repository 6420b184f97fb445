"""Everything a worker process holds for its lifetime, created in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis.asyncio as aioredis

from api.db import Database
from api.otp.service import OtpService
from api.otp.tokens import BeneficiaryTokens
from api.problems import reply_failed
from api.programmes import Programmes, get_programmes
from api.ratelimit import RateLimiter
from api.redis import connect_redis
from api.settings import Settings
from bot.dialogue.state import ConversationStore
from bot.dialogue.turn import Policy
from bot.render import Renderer

if TYPE_CHECKING:
    from api.held import Holds
    from api.surge import CacheWrites, LateAnswers, RedisAway


@dataclass
class Runtime:
    settings: Settings
    db: Database
    redis: aioredis.Redis
    programmes: Programmes
    renderer: Renderer
    conversations: ConversationStore
    otp: OtpService
    tokens: BeneficiaryTokens
    policy: Policy
    rate_limiter: RateLimiter
    #: Reply-cache entries waiting to ride on the next look-up to Redis (api/surge.py).
    cache_writes: CacheWrites
    #: Where the messages this worker holds in a surge are written (api/held.py).
    holds: Holds
    #: This worker's answers not given in time or given up on, logged as one episode.
    late: LateAnswers
    #: This worker's messages answered without Redis, logged as one episode.
    redis_away: RedisAway

    @classmethod
    def create(cls, settings: Settings) -> Runtime:
        # Imported here: api.surge reaches this module through the services it calls, and
        # api.held through the conversation service.
        from api.held import Holds
        from api.surge import CacheWrites, LateAnswers, RedisAway

        programmes = get_programmes()
        redis = connect_redis(settings)
        db = Database.from_settings(settings)
        late = LateAnswers()
        return cls(
            settings=settings,
            db=db,
            redis=redis,
            programmes=programmes,
            renderer=Renderer(
                brand=programmes.brand,
                programme_name=programmes.name,
                auto_reload=not settings.is_production,
                on_failure=reply_failed,
            ),
            conversations=ConversationStore(redis, secret=settings.secret_key),
            otp=OtpService(redis, settings),
            tokens=BeneficiaryTokens(
                redis, ttl_seconds=settings.token_ttl_seconds, secret=settings.secret_key
            ),
            policy=Policy(
                default_language=settings.default_language,
                verification_seconds=settings.verification_ttl_seconds,
                code_minutes=max(1, settings.otp_ttl_seconds // 60),
            ),
            rate_limiter=RateLimiter(settings, settings.redis_url),
            cache_writes=CacheWrites(redis),
            holds=Holds(db, redis, late=late, secret=settings.secret_key),
            late=late,
            redis_away=RedisAway(),
        )

    async def close(self) -> None:
        self.late.close()
        self.redis_away.close()
        await self.holds.close()
        await self.cache_writes.flush()
        await self.rate_limiter.close()
        await self.redis.aclose()
        await self.db.dispose()
