"""Proving who is asking (SPEC §3): the sender's phone is the registered mobile, or they typed
the code sent to it. Shared by the conversation and the REST API."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.identity import Cnic, keyed_digest, mask_phone
from api.otp.service import Issued, IssueOutcome, OtpUnavailable, new_code
from api.outbox.service import enqueue
from api.registry import repository
from api.registry.models import Contact, OutboundMessage
from api.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CodeRequest:
    """An issued (or refused) code and where it went; `mobile` stays on the server."""

    issued: Issued
    mobile: str | None
    in_registry: bool

    @property
    def mobile_masked(self) -> str | None:
        return mask_phone(self.mobile) if self.mobile else None


def requester(channel: str, sender: str) -> str:
    """Who asks for a code in a conversation: a channel and its sender address (a phone, a
    chat id). Only ever used inside a keyed hash (OtpService), never stored as it is."""
    return f"{channel}\x00{sender.strip()}"


async def request_code(
    runtime: Runtime, *, cnic: Cnic, requested_by: str | None = None
) -> CodeRequest:
    """Issue a code for `cnic` (a decoy when no code can reach anyone); raises OtpUnavailable.

    With `requested_by` (see `requester`), that requester's code for `cnic` that is still live,
    unused and not exhausted is resumed (IssueOutcome.RESUMED: nothing new to deliver) instead
    of meeting the resend cooldown."""
    async with runtime.db.registry_sessions() as session:
        in_registry, mobile = await repository.registered_mobile(session, cnic=cnic.digits)
    issued = await runtime.otp.issue(
        cnic=cnic.digits, deliverable=mobile is not None, requester=requested_by
    )
    return CodeRequest(issued=issued, mobile=mobile, in_registry=in_registry)


async def deliver_code(
    runtime: Runtime,
    request: CodeRequest,
    *,
    language: str | None,
    session: AsyncSession | None = None,
) -> None:
    """Put the code SMS in the outbox (in `session`'s transaction, or a new one), in the
    language the registered phone last chose."""
    if request.issued.outcome is not IssueOutcome.ISSUED or not request.issued.code:
        return
    if session is None:
        async with runtime.db.transaction() as own:
            await _queue_code(runtime, own, request, language)
    else:
        await _queue_code(runtime, session, request, language)
    log.info("verification code queued for %s", mask_phone(request.mobile or ""))


async def resend_if_lost(
    runtime: Runtime, request: CodeRequest, *, language: str | None, session: AsyncSession
) -> CodeRequest:
    """A resumed request whose code never reached the outbox gets a new code, queued in
    `session`'s transaction; any other request is returned as it is.

    Redis stores a code (and binds it to its requester) before the message's transaction
    queues its SMS; when that transaction is lost (the database gone at its commit), asking
    again resumed a code nobody was sent, and the person was told "we sent a code" until it
    expired. The new code keeps the request, its tries and its lifetime."""
    issued = request.issued
    if issued.outcome is not IssueOutcome.RESUMED or not issued.request_id or not request.mobile:
        return request
    dedup_key = _code_key(runtime, issued.request_id)
    found = select(OutboundMessage.id).where(OutboundMessage.dedup_key == dedup_key)
    if await session.scalar(found) is not None:
        return request  # it went, or is going: the person has it
    renewed = CodeRequest(
        issued=replace(issued, outcome=IssueOutcome.ISSUED, code=new_code()),
        mobile=request.mobile,
        in_registry=request.in_registry,
    )
    queued = await _queue_code(runtime, session, renewed, language)
    if queued is None:
        return request  # another message queued it at this moment
    try:
        live = await runtime.otp.renew(issued.request_id, renewed.issued.code or "")
    except OtpUnavailable:
        await session.delete(queued)  # the SMS would carry a code that opens nothing
        raise
    if not live:
        await session.delete(queued)
        return request
    log.info("verification code sent again: the first never reached the outbox")
    return renewed


def _code_key(runtime: Runtime, request_id: str) -> str:
    """The outbox dedup key of a request's code SMS (a keyed hash: no request id in the
    database)."""
    return "otp:" + keyed_digest(runtime.settings.secret_key.encode(), "code-sms", request_id)


async def _queue_code(
    runtime: Runtime, session: AsyncSession, request: CodeRequest, language: str | None
) -> OutboundMessage | None:
    assert request.mobile is not None and request.issued.code is not None
    chosen = await session.scalar(
        select(Contact.language).where(Contact.channel == "sms", Contact.address == request.mobile)
    )
    lang = chosen or language or runtime.settings.default_language
    body = runtime.renderer.render_text(
        "otp/code",
        {"code": request.issued.code, "minutes": runtime.settings.otp_ttl_seconds // 60},
        language=lang,
        channel="sms",
    )
    return await enqueue(
        session,
        channel="sms",
        to=request.mobile,
        body=body,
        kind="otp",
        language=lang,
        priority=0,
        dedup_key=_code_key(runtime, request.issued.request_id or ""),
    )


def verified_until(runtime: Runtime, *, now: dt.datetime | None = None) -> dt.datetime:
    """When a verification made now stops counting."""
    now = now or dt.datetime.now(dt.UTC)
    return now + dt.timedelta(seconds=runtime.settings.verification_ttl_seconds)
