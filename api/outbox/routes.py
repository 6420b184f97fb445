"""`POST /webhooks/twilio/status`: Twilio's delivery-status callbacks update the outbox."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response

from api.deps import RuntimeDep
from api.outbox.service import record_status
from api.problems import Problem
from api.webhooks.twilio import verified_form

log = logging.getLogger(__name__)

router = APIRouter(tags=["webhooks"])


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
    async with runtime.db.transaction() as session:
        known = await record_status(session, provider_id=sid, status=status, error_code=error_code)
    if not known:
        # Answer 2xx anyway: Twilio would otherwise retry a callback we can never apply.
        log.warning("twilio status %r for an unknown message %s", status, sid)
    return Response(status_code=204)
