"""Redis away (killed, not restarted) while a person texts a complaint.

Without Redis a conversation cannot remember the question it asked: a complaint's category
menu, its confirmation, a choice of person. Rabta then says the service is busy, as USSD
does, instead of asking a question whose answer it will not understand ("Sorry, we did not
understand") and leaving the person in that loop, believing the complaint can be filed.
"""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from api.registry.models import Grievance
from tests.api.test_twilio_webhook import reply_text, sms
from tests.conftest import NOT_ELIGIBLE, NOT_ELIGIBLE_PHONE
from tests.faults.conftest import serve_app

SMS_URL = "/webhooks/twilio/messaging"
BUSY = "Sorry, the service is busy. Please try again in a few minutes."


async def test_with_redis_away_a_complaint_is_not_begun_but_put_off(
    fault_env, private_redis, registry, db
):
    settings = fault_env(REDIS_URL=private_redis.url)
    async with serve_app(settings) as served, httpx.AsyncClient(base_url=served.url) as http:
        sids = iter(range(1, 100))

        async def send(body: str) -> str:
            form = sms(body, f"SMredisaway{next(sids):06d}", sender=NOT_ELIGIBLE_PHONE)
            response = await http.post(SMS_URL, data=form, timeout=15)
            assert response.status_code == 200, response.text
            return reply_text(response)

        assert "English" in await send("LANG EN")
        private_redis.kill()
        # A look-up needs no memory: answered as ever.
        assert "not eligible" in (await send(NOT_ELIGIBLE)).lower()
        assert await send("COMPLAINT agent took 1000 rupees") == BUSY
        assert await send("2") == BUSY
        assert await send("1") == BUSY
        assert await send("HELP") != BUSY
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Grievance)) == 0
