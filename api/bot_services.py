"""The domain services the conversation calls (bot.ports.Services), in-process: no HTTP hop."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession

from api.eligibility import service as eligibility_service
from api.eligibility.schemas import EligibilityResult, ProgrammeState
from api.grievances import repository as grievance_repository
from api.grievances import service as grievance_service
from api.grievances.schemas import Category, GrievanceOut
from api.hot import Executor
from api.identity import Cnic
from api.otp.service import Checked, IssueOutcome, OtpUnavailable
from api.payments import service as payment_service
from api.payments.schemas import PaymentSchedule
from api.ratelimit import Decision
from api.registry import repository
from api.runtime import Runtime
from api.verification import deliver_code, request_code, requester, resend_if_lost
from bot.ports import CodeSent, CodeStatus, LookupVerdict

_ISSUE_STATUS = {
    IssueOutcome.ISSUED: CodeStatus.SENT,
    IssueOutcome.COOLDOWN: CodeStatus.COOLDOWN,
    IssueOutcome.TOO_MANY: CodeStatus.TOO_MANY,
    # This sender's code for this CNIC is still live: ask for it again, send nothing new.
    IssueOutcome.RESUMED: CodeStatus.SENT,
}


def _sender_scope(channel: str) -> str:
    return "telegram" if channel == "telegram" else "sender"


def lookup_hits(channel: str, sender: str, cnic: str | None) -> list[tuple[str, str]]:
    """The rate limits a look-up counts (SPEC §4), in order: the sender's, then the CNIC's."""
    scope = _sender_scope(channel)
    return [(scope, sender)] if cnic is None else [(scope, sender), ("cnic", cnic)]


#: A look-up's limits counted ahead of the flow (api/surge.py `lookup`): its CNIC's digits and
#: the decisions `RateLimiter.read_then_hit_in_turn` gave, for all of `lookup_hits` or the first
#: ones (the sender's alone, when a cached answer was found).
Counted = tuple[str, Sequence[Decision]]


class RabtaServices:
    """Implements `bot.ports.Services` over the registry, Redis and the outbox."""

    def __init__(
        self,
        runtime: Runtime,
        session: Executor,
        *,
        channel: str,
        sender: str,
        contact_id: int | None = None,
    ) -> None:
        self._runtime = runtime
        #: The inbound message's transaction: what the flow files or queues commits with its
        #: reply, so a replayed message finds both done and does neither again (a look-up
        #: lane's connection in autocommit for `LookupServices`, which write nothing).
        self._session = session
        self._channel = channel
        self._sender = sender
        self._contact_id = contact_id
        #: The CNICs registered to each phone asked about in this message: a flow may ask twice
        #: (may this phone see the CNIC? then, how is it named?).
        self._phones: dict[str, list[str]] = {}

    @asynccontextmanager
    async def _registry(self) -> AsyncIterator[AsyncSession]:
        """A session for registry reads: a replica's own, or else the message's session, so one
        message never holds two connections of the pool (two per message deadlock a busy
        worker once the pool is exhausted by requests each waiting for its second)."""
        if not self._runtime.db.registry_is_primary:
            async with self._runtime.db.registry_sessions() as session:
                yield session
        else:
            async with self._orm() as session:
                yield session

    @asynccontextmanager
    async def _orm(self) -> AsyncIterator[AsyncSession]:
        """The message's session, for ORM queries; a look-up lane's bare connection gets a
        session bound to it (seldom: the lane's own statements need none)."""
        if isinstance(self._session, AsyncSession):
            yield self._session
        else:
            async with AsyncSession(bind=self._session) as session:
                yield session

    async def lookup_allowed(self, cnic: str | None) -> LookupVerdict:
        hits = lookup_hits(self._channel, self._sender, cnic)
        return await self._verdict(hits, await self._runtime.rate_limiter.hit_in_turn(hits))

    async def _verdict(
        self, hits: Sequence[tuple[str, str]], decisions: Sequence[Decision]
    ) -> LookupVerdict:
        """What the look-up limits' decisions mean for the flow: go on, or say "try again after"
        (once per refusal window: every further SMS would cost money)."""
        index = next((i for i, d in enumerate(decisions) if not d.allowed), None)
        if index is None:
            return LookupVerdict(allowed=True)
        refused, (scope, identity) = decisions[index], hits[index]
        if scope == "cnic":
            # A CNIC's day-long window is told once to each sender, about that CNIC: keyed on the
            # sender alone it would silence this phone's answers about other CNICs, and its own
            # limit's, until the CNIC's day is over.
            identity = f"{identity}:{self._sender}"
        tell = await self._runtime.rate_limiter.first_refusal(
            scope, identity, max(refused.retry_after, 1)
        )
        return LookupVerdict(
            allowed=False,
            retry_after=refused.retry_after,
            tell=tell,
            scope="cnic" if scope == "cnic" else "sender",
        )

    async def eligibility(self, cnic: Cnic, *, full: bool = False) -> EligibilityResult:
        async with self._registry() as session:
            return await eligibility_service.check_eligibility(
                session, cnic=cnic, cutoff=self._runtime.settings.pmt_cutoff, full=full
            )

    async def programmes(self, cnic: str) -> tuple[ProgrammeState, ...]:
        async with self._registry() as session:
            return await eligibility_service.programmes_of(session, cnic=cnic)

    async def cnics_for_phone(self, phone: str) -> list[str]:
        if (known := self._phones.get(phone)) is not None:
            return known
        async with self._registry() as session:
            persons = await repository.list_persons_by_mobile(session, mobile=phone)
        self._phones[phone] = cnics = [p.cnic for p in persons]
        return cnics

    async def send_code(self, cnic: Cnic, *, language: str) -> CodeSent:
        # Bound to this channel and sender: asking again (a USSD session that timed out, an
        # expired or restarted conversation) resumes their live code instead of the cooldown.
        try:
            request = await request_code(
                self._runtime, cnic=cnic, requested_by=requester(self._channel, self._sender)
            )
        except OtpUnavailable:
            return CodeSent(CodeStatus.UNAVAILABLE)
        # In a conversation the CNIC's coarse status is no secret (anyone may ask for it), so
        # unlike the REST API the bot can say plainly why no code was sent.
        if not request.in_registry:
            return CodeSent(CodeStatus.NOT_FOUND)
        if request.mobile is None:
            return CodeSent(CodeStatus.NO_MOBILE)
        if request.issued.outcome is IssueOutcome.RESUMED:
            try:
                async with self._orm() as session:
                    request = await resend_if_lost(
                        self._runtime, request, language=language, session=session
                    )
            except OtpUnavailable:
                return CodeSent(CodeStatus.UNAVAILABLE)
        elif request.issued.outcome is IssueOutcome.ISSUED:
            async with self._orm() as session:
                await deliver_code(self._runtime, request, language=language, session=session)
        issued = request.issued
        status = _ISSUE_STATUS[issued.outcome]
        return CodeSent(
            status,
            request_id=issued.request_id,
            mobile_masked=request.mobile_masked,
            retry_after=issued.retry_after,
            expires_in=issued.expires_in,
            resumed=issued.outcome is IssueOutcome.RESUMED,
        )

    async def check_code(self, request_id: str, code: str) -> Checked:
        return await self._runtime.otp.check(request_id=request_id, code=code)

    async def payment_schedule(self, cnic: str) -> PaymentSchedule:
        async with self._registry() as session:
            return await payment_service.payment_schedule(
                session, cnic=cnic, today=dt.datetime.now(dt.UTC).date()
            )

    async def file_grievance(
        self,
        cnic: str,
        *,
        category: Category,
        description: str,
        language: str,
        callback_requested: bool = False,
        draft_key: str | None = None,
    ) -> GrievanceOut:
        async with self._registry() as registry:
            found = await repository.get_person_and_household(registry, cnic=cnic)
        async with self._orm() as session:
            grievance = await grievance_service.file_grievance(
                session,
                cnic=Cnic(cnic),
                category=category,
                description=description,
                channel=self._channel,
                contact_id=self._contact_id,
                language=language,
                callback_requested=callback_requested,
                district=found[1].district if found else None,
                sla_days=self._runtime.settings.grievance_sla_days,
                draft_key=draft_key,
            )
        return GrievanceOut.from_grievance(grievance)

    async def grievance_owner(self, ticket_id: str) -> str | None:
        async with self._orm() as session:
            return await grievance_repository.owner_of(session, ticket_id=ticket_id)

    async def grievance_for_owner(self, cnic: str, ticket_id: str) -> GrievanceOut | None:
        async with self._orm() as session:
            grievance = await grievance_service.get_for_owner(
                session, cnic=cnic, ticket_id=ticket_id
            )
        return GrievanceOut.from_grievance(grievance) if grievance else None

    async def grievances_for_owner(self, cnic: str) -> list[GrievanceOut]:
        async with self._orm() as session:
            grievances = await grievance_service.list_for_owner(session, cnic=cnic)
        return [GrievanceOut.from_grievance(g) for g in grievances]


class LookupServices(RabtaServices):
    """The services of the look-up lane (api/conversations/service.py `_look_up`): its
    connection is in autocommit, so anything that writes beside the message must not run on
    it. The lane is only taken for a CNIC in an idle conversation (on USSD, a screen that only
    reads), whose flow only reads; a flow that would write is a bug in that choice, and fails
    loudly here instead of writing outside the message's transaction.

    `households` holds registry reads made ahead, with the contact's upsert: CNIC → (status,
    PMT score) or None for not found. The flow's first coarse look-up of that CNIC takes its
    answer from there instead of reading again. Likewise `counted`, the look-up's limits
    counted ahead for a CNIC, answers the flow's first `lookup_allowed` of that CNIC.
    """

    def __init__(
        self,
        runtime: Runtime,
        session: Executor,
        *,
        channel: str,
        sender: str,
        contact_id: int | None = None,
        households: Mapping[str, repository.Coarse | None] | None = None,
        counted: Counted | None = None,
    ) -> None:
        super().__init__(runtime, session, channel=channel, sender=sender, contact_id=contact_id)
        self._households = dict(households or {})
        self._counted = counted

    async def lookup_allowed(self, cnic: str | None) -> LookupVerdict:
        counted, self._counted = self._counted, None
        if counted is None or cnic != counted[0]:
            return await super().lookup_allowed(cnic)
        decisions = list(counted[1])
        hits = lookup_hits(self._channel, self._sender, cnic)
        if len(decisions) < len(hits) and all(d.allowed for d in decisions):
            # The sender's limit alone was counted ahead (a cached answer that did not serve).
            decisions += await self._runtime.rate_limiter.hit_in_turn(hits[len(decisions) :])
        return await self._verdict(hits, decisions)

    async def eligibility(self, cnic: Cnic, *, full: bool = False) -> EligibilityResult:
        if not full and cnic.digits in self._households:
            coarse = self._households.pop(cnic.digits)
            cutoff = self._runtime.settings.pmt_cutoff
            return eligibility_service.coarse_result(cnic, coarse, cutoff=cutoff)
        return await super().eligibility(cnic, full=full)

    async def send_code(self, cnic: Cnic, *, language: str) -> CodeSent:
        raise NotALookup("send_code")

    async def file_grievance(
        self,
        cnic: str,
        *,
        category: Category,
        description: str,
        language: str,
        callback_requested: bool = False,
        draft_key: str | None = None,
    ) -> GrievanceOut:
        raise NotALookup("file_grievance")


class NotALookup(RuntimeError):
    """A flow taken for a look-up tried to write."""
