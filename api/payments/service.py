"""The payment schedule of a verified person (SPEC §5.2)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.identity import mask_cnic
from api.payments.schemas import PaymentSchedule, Tranche
from api.registry.models import Payment

#: How many past tranches a schedule shows after the next one.
HISTORY = 3


async def list_payments(session: AsyncSession, *, cnic: str) -> list[Tranche]:
    """All of a person's payments, newest window first."""
    rows = await session.scalars(
        select(Payment)
        .where(Payment.cnic == cnic)
        .order_by(Payment.window_start.desc(), Payment.payment_id)
    )
    return [
        Tranche(
            payment_id=p.payment_id,
            programme=p.programme,
            tranche=p.tranche,
            amount_pkr=p.amount_pkr,
            window_start=p.window_start,
            window_end=p.window_end,
            mode=p.mode,
            place=p.place,
            status=p.status,
            reason=p.reason,
        )
        for p in rows
    ]


def schedule_from(cnic: str, payments: list[Tranche], *, today: dt.date) -> PaymentSchedule:
    """Pick the tranche that matters now: the earliest whose window has not closed, else the
    latest; the ones before it (newest first) are the history."""
    upcoming = sorted((p for p in payments if p.window_end >= today), key=lambda p: p.window_start)
    current = upcoming[0] if upcoming else (payments[0] if payments else None)
    if current is None:
        return PaymentSchedule(cnic_masked=mask_cnic(cnic), next=None)
    history = tuple(
        p for p in payments if p is not current and p.window_start < current.window_start
    )[:HISTORY]
    return PaymentSchedule(cnic_masked=mask_cnic(cnic), next=current, recent=history)


async def payment_schedule(session: AsyncSession, *, cnic: str, today: dt.date) -> PaymentSchedule:
    """The schedule for `cnic` as of `today`."""
    return schedule_from(cnic, await list_payments(session, cnic=cnic), today=today)
