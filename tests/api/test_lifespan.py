"""The lifespan's garbage-collector freeze: production workers keep what start-up loaded out of
the collector's full passes (docs/performance.md: ~100 ms stalls otherwise); development and
tests, which start many apps in one process, do not pay for the collection it takes."""

from __future__ import annotations

import gc

from api.main import create_app


async def test_production_freezes_start_up_objects_until_shutdown(settings, db, redis):
    production = settings.model_copy(update={"rabta_env": "production"})
    assert production.is_production
    application = create_app(production)
    assert gc.get_freeze_count() == 0
    async with application.router.lifespan_context(application):
        assert gc.get_freeze_count() > 10_000
    assert gc.get_freeze_count() == 0, "a stopped app leaves nothing frozen (tests start many)"


async def test_development_freezes_nothing(settings, db, redis):
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        assert gc.get_freeze_count() == 0
