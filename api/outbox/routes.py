"""`POST /webhooks/twilio/status`: Twilio's delivery-status callbacks update the outbox."""

from __future__ import annotations

import logging
import re

from fastapi import APIRouter, Request, Response

from api.deps import RuntimeDep
from api.outbox.senders import TWILIO_STATUS_OUTBOX_PARAM
from api.outbox.service import record_status
from api.problems import Problem
from api.webhooks.twilio import verified_form

log = logging.getLogger(__name__)

router = APIRouter(tags=["webhooks"])

#: An outbox id as the sender writes it into the callback URL: plain ASCII digits that fit a
#: BIGINT (18 digits always do).
_OUTBOX_ID = re.compile(r"[0-9]{1,18}")


def _outbox_id(request: Request) -> int | None:
    """The `?outbox=` of the callback URL, or None when it is absent or not one plain id.

    The signature covers the query string, so a value that reaches this point is the one the
    sender gave Twilio (or, without TWILIO_AUTH_TOKEN, anyone's: it only finds a row, and a row
    already tracking another MessageSid is never changed). Anything else falls back to finding
    the row by MessageSid, as callbacks of messages sent before the id was added do.
    """
    values = request.query_params.getlist(TWILIO_STATUS_OUTBOX_PARAM)
    if not values:
        return None
    if len(values) != 1 or not _OUTBOX_ID.fullmatch(values[0]):
        log.warning("twilio status callback with a malformed outbox id; using the MessageSid")
        return None
    return int(values[0])


@router.post("/webhooks/twilio/status", status_code=204, response_class=Response)
async def twilio_status(request: Request, runtime: RuntimeDep) -> Response:
    """A status callback (queued, sent, delivered, undelivered, failed, read) for a message."""
    params = await verified_form(request, runtime.settings)
    sid = params.get("MessageSid", "").strip()
    status = (params.get("MessageStatus") or params.get("SmsStatus") or "").strip()
    if not sid or not status:
        raise Problem(400, "MessageSid and MessageStatus are required.")
    if len(sid) > 64 or len(status) > 20:
        raise Problem(400, "MessageSid or MessageStatus is too long.")
    error_code = (params.get("ErrorCode") or "").strip()[:10] or None
    outbox_id = _outbox_id(request)
    async with runtime.db.transaction() as session:
        known = await record_status(
            session, provider_id=sid, status=status, error_code=error_code, outbox_id=outbox_id
        )
    if not known:
        # Answer 2xx anyway: Twilio would otherwise retry a callback we can never apply.
        log.warning("twilio status %r for an unknown message %s", status, sid)
    return Response(status_code=204)
