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
from api.outbox.service import OptedOutBy
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
    are on again") holds on all the channels of that number, and a STOP is recorded as one on
    a contact already opted out otherwise (a blocked bot, which unblocking would end); how many
    changed."""
    by = OptedOutBy.STOP.value if opted_out else None
    result = await session.execute(
        update(Contact)
        .where(
            Contact.phone == phone,
            or_(Contact.opted_out.is_not(opted_out), Contact.opted_out_by.is_distinct_from(by)),
        )
        .values(opted_out=opted_out, opted_out_by=by)
        .execution_options(synchronize_session="fetch")
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def record_opt_out(session: Executor, *, contact_id: int, opted_out: bool) -> None:
    """STOP or START on a contact without a proven phone (a Telegram chat before its number is
    shared): why it is opted out, beside the flag its save writes."""
    await session.execute(
        update(Contact)
        .where(Contact.id == contact_id)
        .values(opted_out_by=OptedOutBy.STOP.value if opted_out else None)
        .execution_options(synchronize_session=False)
    )
