"""Queries on contacts and the inbound-message log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from api.registry.models import Contact, InboundMessage


def _insert(session: AsyncSession, model: Any) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT."""
    dialect = session.bind.dialect.name if session.bind else "postgresql"
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


async def claim_inbound(
    session: AsyncSession, *, channel: str, external_id: str
) -> InboundMessage | None:
    """Record a provider message id; None if it is new, else the earlier record (a replay).

    On PostgreSQL a concurrent duplicate waits here until the first transaction commits, so it
    sees the first one's reply instead of answering twice.
    """
    inserted = await session.execute(
        _insert(session, InboundMessage)
        .values(channel=channel, external_id=external_id)
        .on_conflict_do_nothing(index_elements=["channel", "external_id"])
        .returning(InboundMessage.id)
    )
    if inserted.scalar_one_or_none() is not None:
        return None
    return await session.scalar(
        select(InboundMessage).where(
            InboundMessage.channel == channel, InboundMessage.external_id == external_id
        )
    )


async def get_inbound(
    session: AsyncSession, *, channel: str, external_id: str
) -> InboundMessage | None:
    return await session.scalar(
        select(InboundMessage).where(
            InboundMessage.channel == channel, InboundMessage.external_id == external_id
        )
    )


async def get_or_create_contact(
    session: AsyncSession, *, channel: str, address: str, phone: str | None
) -> Contact:
    """The contact for a channel address, created on first contact."""
    await session.execute(
        _insert(session, Contact)
        .values(channel=channel, address=address, phone=phone, opted_out=False)
        .on_conflict_do_nothing(index_elements=["channel", "address"])
    )
    contact = await session.scalar(
        select(Contact).where(Contact.channel == channel, Contact.address == address)
    )
    assert contact is not None
    return contact
