"""Telling the owner what happened to their grievance, on the channel they used (SPEC §5.3).

The message goes into the outbox in the same transaction as the change itself, keyed by the
event, so a change is never announced twice nor lost.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from api.conversations import people
from api.db import utc
from api.grievances.schemas import Action
from api.grievances.service import Notify
from api.identity import mask_cnic
from api.outbox.service import FILED_FOR_THEM, enqueue
from api.registry import repository as registry_repository
from api.registry.models import Contact, Grievance, GrievanceEvent
from api.runtime import Runtime
from bot.dialogue.flows.who import named_among

#: Channels Rabta can push to; a grievance filed elsewhere (USSD, REST, an agent) is answered by
#: SMS to the registered mobile.
PUSH_CHANNELS = frozenset({"sms", "whatsapp", "telegram"})
#: WhatsApp allows free-form messages only this long after the person's last message.
WHATSAPP_WINDOW = dt.timedelta(hours=24)
_ANNOUNCED = {Action.STATUS_CHANGED, Action.ESCALATED, Action.REOPENED, Action.NOTE}


def owner_notifier(runtime: Runtime, session: AsyncSession) -> Notify:
    """The `notify` hook for grievance changes made in `session`."""

    async def notify(grievance: Grievance, event: GrievanceEvent) -> None:
        filed_for_them = event.action == Action.FILED and grievance.filed_by is not None
        if event.action not in _ANNOUNCED and not filed_for_them:
            return  # a person filing for themself already has the reply with the ticket id
        # The ticket id of a complaint an agent filed at her request answers that request, as
        # the reply to her own COMPLAINT would: it goes even after STOP, which ends updates.
        kind = FILED_FOR_THEM if filed_for_them else "grievance_update"
        await _announce(runtime, session, grievance, event, kind=kind)

    return notify


async def _announce(
    runtime: Runtime,
    session: AsyncSession,
    grievance: Grievance,
    event: GrievanceEvent,
    *,
    kind: str,
) -> None:
    contact = await session.get(Contact, grievance.contact_id) if grievance.contact_id else None
    channel, to = (contact.channel, contact.address) if contact else ("", "")
    template: str | None = None
    now = dt.datetime.now(dt.UTC)
    if channel == "whatsapp" and contact is not None:
        # The template goes with every WhatsApp update, not only those queued outside the
        # window: one queued inside it may leave after it closed (a retry's backoff, a worker
        # that was down), and the worker then sends the template instead of failing it.
        template = runtime.settings.twilio_whatsapp_update_template
        last = utc(contact.last_inbound_at) if contact.last_inbound_at else None
        if (last is None or now - last > WHATSAPP_WINDOW) and template is None:
            channel, to = "sms", contact.phone or ""
    # The language the person chose last (LANG, a menu, a button) on the channel they filed
    # from, which a choice on any of their channels updates; else the one they filed in (or the
    # agent chose for them).
    language = (contact.language if contact else None) or grievance.language
    phone = contact.phone if contact else None
    if channel not in PUSH_CHANNELS or not to:
        async with runtime.db.registry_sessions() as registry:
            found = await registry_repository.get_person_and_household(
                registry, cnic=grievance.cnic
            )
        mobile = found[0].mobile if found else None
        if mobile is None:
            return  # nowhere to send it: the console's queue still shows the change
        channel, to, phone = "sms", mobile, mobile
        if language is None:
            # Filed over the API: the language they chose texting from that mobile, if any.
            language = await people.language_for_phone(session, phone=mobile)
    language = language or runtime.settings.default_language
    note = event.note if event.action != Action.INTERNAL_NOTE else None
    status = grievance.status
    cnic = await _named(runtime, grievance.cnic, phone)
    body = runtime.renderer.render_text(
        "grievance/update",
        {"ticket": grievance.ticket_id, "cnic": cnic, "status": status, "note": note},
        language=language,
        channel=channel,
    )
    variables: dict[str, str] | None = None
    if template:
        # The approved template is `{{1}}: {{2}}`: the complaint and whose, and its status.
        variables = {
            "1": runtime.renderer.render_text(
                "grievance/template_subject",
                {"ticket": grievance.ticket_id, "cnic": cnic},
                language=language,
                channel=channel,
            ),
            "2": runtime.renderer.render_text(
                "grievance/status_word", {"status": status}, language=language, channel=channel
            ),
        }
    await enqueue(
        session,
        channel=channel,
        to=to,
        body=body,
        kind=kind,
        language=language,
        priority=5,
        dedup_key=f"grievance-event:{event.id}",
        grievance_id=grievance.id,
        template=template,
        template_variables=variables,
    )


async def _named(runtime: Runtime, digits: str, phone: str | None) -> str:
    """Whose complaint the update is about, masked as an answer on that phone names them
    (`who.named`): a helper's phone may get updates for several people, and a family's shared
    phone for each of them (SPEC §3)."""
    if not phone:
        return mask_cnic(digits)
    async with runtime.db.registry_sessions() as registry:
        persons = await registry_repository.list_persons_by_mobile(registry, mobile=phone)
    return named_among([person.cnic for person in persons], digits)
