"""Proving who is asking (SPEC §3): the sender's phone is the registered mobile, or they typed
the code sent to it. Shared by the conversation and the REST API."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.identity import Cnic, mask_phone
from api.otp.service import Issued, IssueOutcome
from api.outbox.service import enqueue
from api.registry import repository
from api.registry.models import Contact
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


async def _queue_code(
    runtime: Runtime, session: AsyncSession, request: CodeRequest, language: str | None
) -> None:
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
    await enqueue(
        session,
        channel="sms",
        to=request.mobile,
        body=body,
        kind="otp",
        language=lang,
        priority=0,
    )


def verified_until(runtime: Runtime, *, now: dt.datetime | None = None) -> dt.datetime:
    """When a verification made now stops counting."""
    now = now or dt.datetime.now(dt.UTC)
    return now + dt.timedelta(seconds=runtime.settings.verification_ttl_seconds)
