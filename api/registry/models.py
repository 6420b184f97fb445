"""SQLAlchemy models: the registry extract (read side) and Rabta's own tables (write side)."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names so Alembic migrations are identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# -- the registry extract ------------------------------------------------------------------


class HouseholdStatus(enum.StrEnum):
    ACTIVE = "active"
    UNDER_REVIEW = "under_review"


class Household(Base):
    __tablename__ = "households"

    household_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    pmt_score: Mapped[float] = mapped_column(Numeric(6, 2))
    province: Mapped[str] = mapped_column(String(40))
    district: Mapped[str] = mapped_column(String(60))
    tehsil: Mapped[str] = mapped_column(String(60))
    survey_date: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default=HouseholdStatus.ACTIVE)

    persons: Mapped[list[Person]] = relationship(back_populates="household")


class Person(Base):
    __tablename__ = "persons"

    cnic: Mapped[str] = mapped_column(String(13), primary_key=True)
    household_id: Mapped[str] = mapped_column(
        ForeignKey("households.household_id", ondelete="CASCADE"), index=True
    )
    full_name: Mapped[str] = mapped_column(String(120))
    gender: Mapped[str] = mapped_column(String(1))
    birth_date: Mapped[dt.date] = mapped_column(Date)
    relation: Mapped[str] = mapped_column(String(20))
    mobile: Mapped[str | None] = mapped_column(String(16), index=True)
    cnic_expiry: Mapped[dt.date | None] = mapped_column(Date)

    household: Mapped[Household] = relationship(back_populates="persons")


class Enrollment(Base):
    __tablename__ = "enrollments"

    cnic: Mapped[str] = mapped_column(String(13), primary_key=True)
    programme: Mapped[str] = mapped_column(String(40), primary_key=True)
    status: Mapped[str] = mapped_column(String(20))
    since: Mapped[dt.date] = mapped_column(Date)


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (Index("ix_payments_cnic_window", "cnic", "window_start"),)

    payment_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    cnic: Mapped[str] = mapped_column(String(13))
    programme: Mapped[str] = mapped_column(String(40))
    tranche: Mapped[str] = mapped_column(String(20))
    amount_pkr: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[dt.date] = mapped_column(Date)
    window_end: Mapped[dt.date] = mapped_column(Date)
    mode: Mapped[str] = mapped_column(String(20))
    place: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(200))


REGISTRY_TABLES = ("households", "persons", "enrollments", "payments")


# -- Rabta's own ---------------------------------------------------------------------------


class Contact(Base):
    """One channel identity (a phone on SMS, a Telegram user) and what it chose."""

    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("channel", "address"),
        # `rabta registry remove` unverifies the contacts of the CNICs it removes.
        Index(
            "ix_contacts_verified_cnic",
            "verified_cnic",
            postgresql_where=text("verified_cnic IS NOT NULL"),
            sqlite_where=text("verified_cnic IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(16), index=True)
    language: Mapped[str | None] = mapped_column(String(10))
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Why it is opted out (api.outbox.service.OptedOutBy): "stop", "carrier" (Twilio's 21610)
    #: or "blocked" (the person blocked the Telegram bot, which unblocking undoes). NULL on an
    #: opted-out contact is a STOP: every opt-out recorded before the reason was is one.
    opted_out_by: Mapped[str | None] = mapped_column(String(16))
    #: The CNIC this contact proved to be (phone match, OTP or shared Telegram contact) and until
    #: when that holds.
    verified_cnic: Mapped[str | None] = mapped_column(String(13))
    verified_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_inbound_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class InboundMessage(Base):
    """Every inbound message once, keyed by the provider's id: a replay gets the stored reply."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        UniqueConstraint("channel", "external_id"),
        Index("ix_inbound_messages_received_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    intent: Mapped[str | None] = mapped_column(String(32))
    #: For an eligibility look-up, the answer given (eligible, not_found, …): for the dashboard.
    outcome: Mapped[str | None] = mapped_column(String(16))
    language: Mapped[str | None] = mapped_column(String(10))
    reply: Mapped[str | None] = mapped_column(Text)


class InboundTraffic(Base):
    """Inbound messages counted by channel, language, intent and outcome over one hour (a whole
    Pakistan day, once that day is over): what the dashboard reads instead of every message.
    Filled by `rabta worker` (api/agent/dashboard.py, `roll_up`) from `inbound_messages`."""

    __tablename__ = "inbound_traffic"
    __table_args__ = (Index("ix_inbound_traffic_starts_at", "starts_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    #: The hour (or, once rolled into days, the Pakistan midnight in UTC) the count starts at.
    starts_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    #: How long the count runs from `starts_at`: 1 (an hour) or 24 (a Pakistan day).
    hours: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(16))
    language: Mapped[str | None] = mapped_column(String(10))
    intent: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str | None] = mapped_column(String(16))
    messages: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))


class HeldMessage(Base):
    """An SMS or WhatsApp message taken while its worker was too busy to answer it (api/held.py):
    kept until it is answered, then deleted; its reply goes out through the outbox."""

    __tablename__ = "held_messages"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    #: The sender as the channel knows it (`Inbound.sender`), and its phone when it has one.
    sender: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: Its look-up's limits were counted, and let it through, by the try that held it (a late
    #: or failed answer): its answer does not count them again (`Inbound.counted`).
    counted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: It carried a voice note, photo, file or location (`Inbound.media`): its answer asks for
    #: typed text, as an answer at once would have.
    media: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: Tries to answer it so far, counted when claimed.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: A worker's claim: past this moment the message is anyone's again.
    claimed_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class OutboundMessage(Base):
    """The outbox: a message to deliver, written in the same transaction as its cause."""

    __tablename__ = "outbound_messages"
    __table_args__ = (
        Index("ix_outbound_due", "status", "next_attempt_at"),
        # Workers claim in (priority, id) order among what is waiting; a large backlog must not
        # be sorted on every claim.
        Index(
            "ix_outbound_pending_order",
            "priority",
            "id",
            postgresql_where=text("status IN ('pending', 'sending')"),
            sqlite_where=text("status IN ('pending', 'sending')"),
        ),
        # `rabta outbox status` shows the latest error of each channel and status.
        Index(
            "ix_outbound_messages_errors",
            "channel",
            "status",
            "id",
            postgresql_where=text("error IS NOT NULL"),
            sqlite_where=text("error IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    to: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    #: What the message is (`otp`, `grievance_status`, `escalation`, …), for metrics and rules.
    kind: Mapped[str] = mapped_column(String(32))
    language: Mapped[str | None] = mapped_column(String(10))
    #: Lower is sooner: replies and OTPs go before bulk notifications.
    priority: Mapped[int] = mapped_column(Integer, default=5)
    #: pending → sending → sent → delivered | failed (or undelivered / suppressed).
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: A worker's claim: past this moment a message stuck in `sending` is retried.
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    #: Enqueueing the same event twice creates one message.
    dedup_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    #: A pre-approved WhatsApp template (Twilio Content SID) for use outside the 24-hour window.
    template: Mapped[str | None] = mapped_column(String(64))
    template_variables: Mapped[str | None] = mapped_column(Text)
    grievance_id: Mapped[int | None] = mapped_column(ForeignKey("grievances.id"), index=True)
    provider_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    provider_status: Mapped[str | None] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


#: The statuses of grievances still being worked, as the partial indexes of `Grievance` say it.
WORKED_STATUSES = "status IN ('open', 'in_progress', 'escalated')"
#: The events that close a grievance, as the dashboard's partial index on them says it.
CLOSING_EVENTS = "to_status IN ('resolved', 'rejected')"


class Grievance(Base):
    __tablename__ = "grievances"
    __table_args__ = (
        Index("ix_grievances_status_due", "status", "due_at"),
        # The grievances being worked (the queue's tabs, the home page, the escalation run), in
        # due order, and by assignee: resolved ones, which only grow, are never walked through.
        Index(
            "ix_grievances_worked_due",
            "due_at",
            "id",
            postgresql_where=text(WORKED_STATUSES),
            sqlite_where=text(WORKED_STATUSES),
        ),
        Index(
            "ix_grievances_worked_assignee",
            "assigned_to",
            "due_at",
            "id",
            postgresql_where=text(WORKED_STATUSES),
            sqlite_where=text(WORKED_STATUSES),
        ),
        # A district's grievances in due order, as the queue filters them (lower(district)):
        # the worked tabs' and the Closed tab's.
        Index(
            "ix_grievances_worked_district",
            text("lower(district)"),
            "due_at",
            "id",
            postgresql_where=text(WORKED_STATUSES),
            sqlite_where=text(WORKED_STATUSES),
        ),
        Index("ix_grievances_district_due", text("lower(district)"), "due_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    ticket_id: Mapped[str] = mapped_column(String(12), unique=True)
    cnic: Mapped[str] = mapped_column(String(13), index=True)
    category: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="open")
    channel: Mapped[str] = mapped_column(String(16))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    assigned_to: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    #: The language the owner spoke when filing, for notifications.
    language: Mapped[str | None] = mapped_column(String(10))
    #: USSD intake: the owner asked to be called back instead of typing a description.
    callback_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Filed by an agent on the caller's behalf (the agent's username), else None.
    filed_by: Mapped[str | None] = mapped_column(String(64))
    district: Mapped[str | None] = mapped_column(String(60), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    due_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    escalated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    reopened_count: Mapped[int] = mapped_column(Integer, default=0)
    #: The conversation's draft this grievance was filed from (bot/dialogue/flows/grievance.py):
    #: a confirmation the conversation meets again (its state left unsaved in Redis after the
    #: filing) finds this grievance instead of filing a second one.
    draft_key: Mapped[str | None] = mapped_column(String(32), unique=True)

    events: Mapped[list[GrievanceEvent]] = relationship(
        back_populates="grievance", order_by="GrievanceEvent.id"
    )


class GrievanceEvent(Base):
    __tablename__ = "grievance_events"
    __table_args__ = (
        # The dashboard's grievances closed in its period, found by their resolutions and
        # rejections in it: never every one ever closed.
        Index(
            "ix_grievance_events_closing_at",
            "at",
            postgresql_where=text(CLOSING_EVENTS),
            sqlite_where=text(CLOSING_EVENTS),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    grievance_id: Mapped[int] = mapped_column(ForeignKey("grievances.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)

    grievance: Mapped[Grievance] = relationship(back_populates="events")


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    # "Who looked at this person?" is the question the log exists to answer.
    __table_args__ = (
        Index("ix_audit_log_record", "record_type", "record_id"),
        # The audit page narrowed to one member of staff, newest first.
        Index("ix_audit_log_actor_at", "actor", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    record_type: Mapped[str] = mapped_column(String(32))
    record_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    client_ip: Mapped[str | None] = mapped_column(String(45))


class Partner(Base):
    """A partner app (portal backend, IVR) with its own API key and quota."""

    __tablename__ = "partners"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    quota: Mapped[str] = mapped_column(String(32), default="1000/minute")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
