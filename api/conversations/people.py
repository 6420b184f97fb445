"""One person across channels: contacts that share a proven phone share a language.

A contact is one channel identity (an SMS number, a Telegram user). Its `phone` is set only when
the channel proves it: the sender's number on SMS, WhatsApp and USSD, or the Telegram user's own
contact card. Contacts with the same phone are the same person (or the same household phone),
so a language chosen on one of them is theirs everywhere:

    SMS +92300… ──LANG UR──► ur ─── sync_language ──► WhatsApp +92300…: ur, Telegram 50123…: ur
    Telegram 50123… (no language) ── shares own card +92300… ── language_for_phone ──► ur
    SMS +92300… ──STOP──► opted out ─── sync_opt_out ──► WhatsApp +92300…: opted out too

The verified link needs nothing more: once the Telegram contact holds the phone, the registry
lookups by phone (PAY from a registered mobile) apply to it as they do to SMS.
"""

from __future__ import annotations

from sqlalchemy import or_, select, update

from api.hot import Executor
from api.registry.models import Contact


async def language_for_phone(session: Executor, *, phone: str) -> str | None:
    """The language the person with this proven phone chose, on their most recent channel."""
    return await session.scalar(
        select(Contact.language)
        .where(Contact.phone == phone, Contact.language.is_not(None))
        .order_by(Contact.last_inbound_at.desc().nulls_last(), Contact.id.desc())
        .limit(1)
    )


async def sync_language(session: Executor, *, phone: str, language: str) -> int:
    """Give every contact with this proven phone the language just chosen; how many changed."""
    result = await session.execute(
        update(Contact)
        .where(
            Contact.phone == phone,
            or_(Contact.language.is_(None), Contact.language != language),
        )
        .values(language=language)
        .execution_options(synchronize_session="fetch")
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def sync_opt_out(session: Executor, *, phone: str, opted_out: bool) -> int:
    """STOP or START for every contact with this proven phone: "no more updates" (or "updates
    are on again") holds on all the channels of that number; how many changed."""
    result = await session.execute(
        update(Contact)
        .where(Contact.phone == phone, Contact.opted_out.is_not(opted_out))
        .values(opted_out=opted_out)
        .execution_options(synchronize_session="fetch")
    )
    return int(getattr(result, "rowcount", 0) or 0)
