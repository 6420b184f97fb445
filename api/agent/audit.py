"""The audit log: who looked at or changed which record, when, from where and why.

Person records are logged with the full 13-digit CNIC as `record_id`. Only that answers the
question an audit log exists for, "who looked at this person's record?": a masked CNIC is shared
by ten million others and a keyed hash dies with the key it was made with. The log lives in the
same database as the registry, which holds the digits already, so this adds no new copy worth
stealing; every page and export shows them masked, and an admin finds a person's entries by
typing the CNIC into the filter.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from api.agent import repository
from api.agent.i18n import as_pkt
from api.agent.repository import AuditFilter
from api.agent.schemas import AuditAction, RecordType
from api.identity import mask_cnic
from api.registry.models import AuditEntry

#: What a CSV export starts with: the UTF-8 byte order mark, without which Excel (what a call
#: centre opens a CSV with) reads the file in the Windows code page and shows Urdu as mojibake.
CSV_BOM = "\ufeff"
#: Most rows one CSV export holds; narrow the filter for more.
EXPORT_LIMIT = 200_000
CSV_COLUMNS = ("at", "actor", "action", "record_type", "record_id", "reason", "client_ip")


def client_ip(request: Request) -> str | None:
    """The client's address as the server saw it (uvicorn resolves trusted proxy headers)."""
    return request.client.host if request.client else None


async def record(
    session: AsyncSession,
    *,
    actor: str,
    action: AuditAction,
    record_type: RecordType,
    record_id: str,
    reason: str | None = None,
    client_ip: str | None = None,
    now: dt.datetime | None = None,
) -> AuditEntry:
    """Add an entry in the caller's transaction: it lands with what it records, or neither does."""
    entry = AuditEntry(
        at=now or dt.datetime.now(dt.UTC),
        actor=actor[:64],
        action=action.value,
        record_type=record_type.value,
        record_id=record_id[:64],
        reason=reason,
        client_ip=client_ip,
    )
    await repository.add_audit_entry(session, entry)
    return entry


def shown_record_id(record_type: str, record_id: str) -> str:
    """The record id as pages and exports show it: a person's CNIC masked."""
    if record_type == RecordType.PERSON and len(record_id) == 13 and record_id.isdigit():
        return mask_cnic(record_id)
    return record_id


def csv_row(entry: AuditEntry) -> list[str]:
    return [
        # Pakistan time, as the page shows it, with its offset so the moment is unambiguous.
        as_pkt(entry.at).isoformat(timespec="seconds"),
        entry.actor,
        entry.action,
        entry.record_type,
        shown_record_id(entry.record_type, entry.record_id),
        entry.reason or "",
        entry.client_ip or "",
    ]


def csv_line(values: list[str]) -> str:
    buffer = io.StringIO()
    # A cell starting with = + - @ is a formula to a spreadsheet: reasons are typed by staff.
    safe = ["'" + v if v[:1] in ("=", "+", "-", "@", "\t", "\r") else v for v in values]
    # Every cell quoted: a spreadsheet whose list separator is `;` would split an unquoted cell
    # at one, and a formula after it would be a cell of its own.
    csv.writer(buffer, quoting=csv.QUOTE_ALL).writerow(safe)
    return buffer.getvalue()


async def export_csv(session: AsyncSession, *, where: AuditFilter) -> AsyncIterator[str]:
    """The filtered log as CSV text, a line at a time, newest first."""
    yield CSV_BOM + csv_line(list(CSV_COLUMNS))
    async for entry in repository.stream_audit(session, where=where, limit=EXPORT_LIMIT):
        yield csv_line(csv_row(entry))
