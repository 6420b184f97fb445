"""Everything a worker process holds for its lifetime, created in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from api.db import Database
from api.programmes import Programmes, get_programmes
from api.redis import connect_redis
from api.settings import Settings
from bot.dialogue.state import ConversationStore
from bot.render import Renderer


@dataclass
class Runtime:
    settings: Settings
    db: Database
    redis: aioredis.Redis
    programmes: Programmes
    renderer: Renderer
    conversations: ConversationStore

    @classmethod
    def create(cls, settings: Settings) -> Runtime:
        programmes = get_programmes()
        redis = connect_redis(settings)
        return cls(
            settings=settings,
            db=Database.from_settings(settings),
            redis=redis,
            programmes=programmes,
            renderer=Renderer(brand=programmes.brand, programme_name=programmes.name),
            conversations=ConversationStore(redis),
        )

    async def close(self) -> None:
        await self.redis.aclose()
        await self.db.dispose()
