"""SLA escalation (SPEC §5.3): every grievance past its due time goes to the supervisors' queue
and its owner hears of it. Run by `rabta worker` (and by the API process in development)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging

from api.grievances import service
from api.grievances.notify import owner_notifier
from api.runtime import Runtime

log = logging.getLogger(__name__)

#: Grievances escalated per transaction: short transactions, row locks held briefly.
BATCH = 200


async def escalate_once(runtime: Runtime, *, now: dt.datetime | None = None) -> int:
    """Escalate everything overdue now; returns how many were escalated."""
    moment = now or dt.datetime.now(dt.UTC)
    total = 0
    while True:
        async with runtime.db.transaction() as session:
            escalated = await service.escalate_overdue(
                session, now=moment, limit=BATCH, notify=owner_notifier(runtime, session)
            )
        total += len(escalated)
        if len(escalated) < BATCH:
            break
    if total:
        log.info("escalated %d overdue grievances", total)
    return total


async def run_escalations(runtime: Runtime, *, stop: asyncio.Event, interval: float = 60.0) -> None:
    """Escalate overdue grievances every `interval` seconds until `stop` is set."""
    while not stop.is_set():
        try:
            await escalate_once(runtime)
        except Exception:  # the database may be restarting: try again next round
            log.exception("escalation pass failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
