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
#: The status of a tranche the person has received (SPEC §5.2).
COLLECTED = "collected"


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


def next_to_collect(payments: list[Tranche], *, today: dt.date) -> Tranche | None:
    """The next payment the person has yet to collect: the earliest tranche whose window has not
    closed and that is not collected (a tranche collected early in its window is behind her)."""
    return min(
        (p for p in payments if p.window_end >= today and p.status != COLLECTED),
        key=lambda p: p.window_start,
        default=None,
    )


def schedule_from(cnic: str, payments: list[Tranche], *, today: dt.date) -> PaymentSchedule:
    """Pick the tranche that matters now: the next one to collect, else the latest; the ones
    before it (newest first) are the history."""
    current = next_to_collect(payments, today=today) or (payments[0] if payments else None)
    if current is None:
        return PaymentSchedule(cnic_masked=mask_cnic(cnic), next=None)
    history = tuple(
        p for p in payments if p is not current and p.window_start < current.window_start
    )[:HISTORY]
    return PaymentSchedule(cnic_masked=mask_cnic(cnic), next=current, recent=history)


async def payment_schedule(session: AsyncSession, *, cnic: str, today: dt.date) -> PaymentSchedule:
    """The schedule for `cnic` as of `today`."""
    return schedule_from(cnic, await list_payments(session, cnic=cnic), today=today)
