"""Queries on contacts and the inbound-message log: the few statements every message makes.

An inbound message costs three statements here, whatever the channel: claim its provider id,
upsert its contact (which also stamps `last_inbound_at` and gives a new contact the language its
phone already has), and store the reply on the claimed row by id. Each is one round trip;
they are written as Core/bulk statements rather than ORM load-then-flush because they run on
every message (docs/performance.md counts them).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from api.registry.models import Contact, InboundMessage


def _insert(session: AsyncSession, model: Any) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT."""
    dialect = session.bind.dialect.name if session.bind else "postgresql"
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


@dataclass(frozen=True, slots=True)
class Claim:
    """A provider message id recorded in the inbound log."""

    #: The row's id: the reply is stored on it by `finish_inbound`.
    id: int
    #: True when the id was recorded before: a replay, to be answered with `reply`.
    replay: bool
    reply: str | None = None
    language: str | None = None


async def claim_inbound(session: AsyncSession, *, channel: str, external_id: str) -> Claim:
    """Record a provider message id; a replay gets the earlier row's reply.

    On PostgreSQL a concurrent duplicate waits here until the first transaction commits, so it
    sees the first one's reply instead of answering twice.
    """
    inserted = await session.execute(
        _insert(session, InboundMessage)
        .values(channel=channel, external_id=external_id)
        .on_conflict_do_nothing(index_elements=["channel", "external_id"])
        .returning(InboundMessage.id)
    )
    new_id = inserted.scalar_one_or_none()
    if new_id is not None:
        return Claim(id=new_id, replay=False)
    earlier = (
        await session.execute(
            select(InboundMessage.id, InboundMessage.reply, InboundMessage.language).where(
                InboundMessage.channel == channel, InboundMessage.external_id == external_id
            )
        )
    ).one()
    return Claim(id=earlier.id, replay=True, reply=earlier.reply, language=earlier.language)


async def finish_inbound(
    session: AsyncSession,
    claim: Claim,
    *,
    contact_id: int,
    reply: str,
    intent: str,
    language: str,
    outcome: str | None = None,
) -> None:
    """Store the reply (and what the message was) on the claimed row, in one UPDATE by id."""
    await session.execute(
        update(InboundMessage)
        .where(InboundMessage.id == claim.id)
        .values(
            contact_id=contact_id,
            reply=reply,
            intent=intent,
            outcome=outcome,
            language=language,
        )
        .execution_options(synchronize_session=False)
    )


async def get_or_create_contact(
    session: AsyncSession,
    *,
    channel: str,
    address: str,
    phone: str | None,
    now: dt.datetime | None = None,
) -> Contact:
    """The contact for a channel address, created on first contact, in one statement.

    The same statement stamps `last_inbound_at` and, when the channel proves a phone, gives a
    contact without a language the one the person chose on another channel (people.py).
    """
    now = now or dt.datetime.now(dt.UTC)
    insert = _insert(session, Contact)
    values: dict[str, Any] = {
        "channel": channel,
        "address": address,
        "phone": phone,
        "opted_out": False,
        "created_at": now,
        "last_inbound_at": now,
    }
    on_conflict: dict[str, Any] = {"last_inbound_at": insert.excluded.last_inbound_at}
    if phone is not None:
        other = aliased(Contact)
        values["language"] = (
            select(other.language)
            .where(other.phone == phone, other.language.is_not(None))
            .order_by(other.last_inbound_at.desc().nulls_last(), other.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        on_conflict["language"] = func.coalesce(Contact.language, insert.excluded.language)
    statement = (
        insert.values(**values)
        .on_conflict_do_update(index_elements=["channel", "address"], set_=on_conflict)
        .returning(Contact)
    )
    contact = await session.scalar(statement, execution_options={"populate_existing": True})
    assert contact is not None
    return contact
