"""A complaint over Telegram from a chat whose shared contact is a family's phone: its answers
and its updates name whose complaint it is (SPEC §3), as that phone's "which CNIC?" menu does."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from api.registry.models import OutboundMessage
from tests.conftest import ELIGIBLE, ELIGIBLE_PHONE, ELIGIBLE_WIFE
from tests.grievances.conftest import resolve_telling_the_owner
from tests.telegram.conftest import TelegramChat, buttons, plain

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

TICKET = re.compile(r"G-[0-9A-Z]{6}")


async def test_filed_tracked_and_updated_under_her_cnic(tg_app, tg_client, fake_api, registry, db):
    chat = TelegramChat(tg_client, fake_api)
    await chat.send("LANG EN")
    await chat.share(ELIGIBLE_PHONE)
    assert "Several CNICs are registered to this phone" in await chat.send("COMPLAINT")
    assert [label for label, _ in buttons(chat.last_markup())] == [
        "35202-***4567-1",
        "35202-***4567-2",
    ]
    await chat.press(ELIGIBLE_WIFE)
    await chat.press("2")
    await chat.send("The agent kept 2000 rupees")
    filed = await chat.press("1")
    ticket = TICKET.search(filed).group(0)
    assert f"Complaint {ticket} for CNIC 35202-***4567-2 is filed." in filed

    status = await chat.send(f"TRACK {ticket}")
    assert status.startswith(
        f"Complaint {ticket} for CNIC 35202-***4567-2 (money deducted by agent): received. Filed "
    )

    await resolve_telling_the_owner(tg_app.state.runtime, db, ticket)
    async with db.sessions() as session:
        (update,) = await session.scalars(
            select(OutboundMessage).where(OutboundMessage.kind == "grievance_update")
        )
    assert update.channel == "telegram"
    assert plain(update.body) == (
        f"Complaint {ticket} for CNIC 35202-***4567-2 is now: resolved. STOP: no more updates."
    )
    for text in (filed, status, update.body):
        shown = text.replace("-", "")
        assert ELIGIBLE not in shown and ELIGIBLE_WIFE not in shown
