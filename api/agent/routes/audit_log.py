"""The audit log for admins: browse with filters, export as CSV (the export is audited too)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response, StreamingResponse

from api.agent import audit
from api.agent.deps import AdminStaff, ConsoleDbDep, Staff
from api.agent.i18n import N_, PKT
from api.agent.pages import COUNT_CAP, Seek, page
from api.agent.repository import AuditFilter, count_audit, list_audit
from api.agent.schemas import AuditAction, RecordType
from api.deps import RuntimeDep
from api.grievances.ticket import normalise_ticket_id
from api.identity import Cnic, InvalidCnic
from api.logs import mask_sensitive

router = APIRouter(prefix="/agent")

PAGE_SIZE = 100


def _day_start(text: str | None) -> dt.datetime | None:
    """Midnight (Pakistan time) starting the day typed as YYYY-MM-DD, in UTC; None if blank."""
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        return None
    try:
        return dt.datetime.combine(day, dt.time(), tzinfo=PKT).astimezone(dt.UTC)
    except OverflowError:
        # 0001-01-01, which a date field takes: its midnight in Pakistan is in year 0 in UTC.
        return dt.datetime.min.replace(tzinfo=dt.UTC)


def _record_id(text: str | None) -> tuple[str | None, str | None]:
    """(record_type, record_id) for what the admin typed: a CNIC, a ticket or anything else."""
    typed = (text or "").strip()
    if not typed:
        return None, None
    try:
        return RecordType.PERSON.value, Cnic.parse(typed).digits
    except InvalidCnic:
        pass
    ticket = normalise_ticket_id(typed)
    if ticket:
        return RecordType.GRIEVANCE.value, ticket
    return None, typed


def _filter(
    actor: str | None, action: str | None, record: str | None, since: str | None, until: str | None
) -> AuditFilter:
    record_type, record_id = _record_id(record)
    end = _day_start(until)
    return AuditFilter(
        actor=(actor or "").strip().casefold() or None,
        action=action if action in {a.value for a in AuditAction} else None,
        record_type=record_type,
        record_id=record_id,
        since=_day_start(since),
        until=end + dt.timedelta(days=1) if end else None,
    )


def _export_reason(where: AuditFilter) -> str | None:
    """What an export, or a reading of the log for a person, was filtered by, as the log keeps
    it: a CNIC masked, as every page and export shows it, and whatever else was typed masked
    wherever it could hold a number."""
    shown = {k: v for k, v in where.__dict__.items() if v is not None}
    if where.record_id is not None:
        shown["record_id"] = audit.shown_record_id(where.record_type or "", where.record_id)
    return mask_sensitive(" ".join(f"{k}={v}" for k, v in shown.items()))[:1000] or None


async def _audit_reading(
    request: Request,
    db: AsyncSession,
    staff: Staff,
    where: AuditFilter,
    *,
    action: AuditAction,
    record_id: str,
) -> None:
    """The log read (a page of it for a person, or an export), in the log: by whom, filtered by
    what."""
    await audit.record(
        db,
        actor=staff.username,
        action=action,
        record_type=RecordType.AUDIT_LOG,
        record_id=record_id,
        reason=_export_reason(where),
        client_ip=audit.client_ip(request),
    )


@router.get("/audit")
async def audit_log(
    request: Request,
    staff: AdminStaff,
    db: ConsoleDbDep,
    actor: str | None = None,
    action: str | None = None,
    record: str | None = None,
    since: str | None = None,
    until: str | None = None,
    after: str | None = None,
    before: str | None = None,
) -> Response:
    """Who looked at or changed what, newest first; CNICs masked. A page links to the older
    entries after it and the newer ones before it (`after`, `before`: a `Cursor`)."""
    where = _filter(actor, action, record, since, until)
    if where.record_type == RecordType.PERSON and not (after or before):
        # Whom a person's record was shown to is about her too: reading it is recorded, as
        # its export is (the first page; the pages after it are the same reading).
        await _audit_reading(request, db, staff, where, action=AuditAction.VIEW, record_id="page")
    total = await count_audit(db, where=where, cap=COUNT_CAP)
    entries = await list_audit(db, where=where, seek=Seek.of(after, before), limit=PAGE_SIZE)
    query = {
        k: v
        for k, v in (
            ("actor", actor),
            ("action", action),
            ("record", record),
            ("since", since),
            ("until", until),
        )
        if v
    }
    return await page(
        request,
        "audit.html",
        staff=staff,
        title=N_("Audit log"),
        entries=entries.rows,
        shown_record_id=audit.shown_record_id,
        total=total,
        actions=[a.value for a in AuditAction],
        filters={
            "actor": actor or "",
            "action": action or "",
            "record": record or "",
            "since": since or "",
            "until": until or "",
        },
        **entries.links(lambda place: "/agent/audit?" + urlencode({**query, **place})),
        export_link="/agent/audit.csv" + ("?" + urlencode(query) if query else ""),
    )


@router.get("/audit.csv")
async def audit_csv(
    request: Request,
    staff: AdminStaff,
    db: ConsoleDbDep,
    runtime: RuntimeDep,
    actor: str | None = None,
    action: str | None = None,
    record: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> Response:
    """The filtered log as CSV, streamed from its own read session (CNICs masked)."""
    where = _filter(actor, action, record, since, until)
    await _audit_reading(request, db, staff, where, action=AuditAction.EXPORT, record_id="csv")

    async def lines() -> AsyncIterator[str]:
        # The request's session is closed once the response starts: the export reads with its own.
        async with runtime.db.sessions() as session:
            async for line in audit.export_csv(session, where=where):
                yield line

    stamp = dt.datetime.now(PKT).strftime("%Y%m%d-%H%M")
    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="rabta-audit-{stamp}.csv"'},
    )
