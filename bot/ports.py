"""What the conversation needs from the rest of Rabta, as a Protocol: the bot never touches the
database itself (api/ implements this in-process, see api/bot_services.py)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from api.eligibility.schemas import EligibilityResult, ProgrammeState
from api.grievances.schemas import Category, GrievanceOut
from api.identity import Cnic
from api.otp.service import Checked
from api.payments.schemas import PaymentSchedule


class CodeStatus(enum.StrEnum):
    SENT = "sent"
    COOLDOWN = "cooldown"
    TOO_MANY = "too_many"
    NO_MOBILE = "no_mobile"
    NOT_FOUND = "not_found"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class LookupVerdict:
    """Whether a look-up may go ahead (SPEC §4), and if not, whether to say so this time."""

    allowed: bool
    retry_after: int = 0
    #: The first refusal in this window: answer once with "try again after …", then be silent.
    tell: bool = False
    #: The limit that refused: `sender` (this phone's own) or `cnic` (the CNIC's, all senders).
    scope: str = "sender"


@dataclass(frozen=True, slots=True)
class CodeSent:
    status: CodeStatus
    request_id: str | None = None
    mobile_masked: str | None = None
    retry_after: int = 0
    #: Seconds the code stays valid (0: unknown, the full lifetime).
    expires_in: int = 0
    #: SENT for a code this sender was already sent for this CNIC, still live: nothing new went
    #: out, and the reply asks for that code again.
    resumed: bool = False

    def minutes_left(self, default: int) -> int:
        """Whole minutes the code stays valid (never more than it has left); `default` when
        unknown."""
        return max(1, self.expires_in // 60) if self.expires_in > 0 else default


class Services(Protocol):
    """Domain services the flows call, in-process."""

    async def lookup_allowed(self, cnic: str | None) -> LookupVerdict:
        """Count a registry look-up by this sender (and of this CNIC) against the limits."""
        ...

    async def eligibility(self, cnic: Cnic, *, full: bool = False) -> EligibilityResult:
        """The eligibility of a CNIC: coarse for anyone, `full` for the verified person."""
        ...

    async def programmes(self, cnic: str) -> tuple[ProgrammeState, ...]:
        """The programmes a person is enrolled in, with their state (for the person only)."""
        ...

    async def cnics_for_phone(self, phone: str) -> list[str]:
        """The CNICs registered with this mobile number."""
        ...

    async def send_code(self, cnic: Cnic, *, language: str) -> CodeSent:
        """Send a one-time code to the mobile registered for `cnic`."""
        ...

    async def check_code(self, request_id: str, code: str) -> Checked:
        """Check a code the person typed."""
        ...

    async def payment_schedule(self, cnic: str) -> PaymentSchedule:
        """The verified person's payment schedule."""
        ...

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
        """File a grievance for the verified person, from this conversation's channel; a
        `draft_key` already filed is not filed again (that grievance is returned)."""
        ...

    async def grievance_owner(self, ticket_id: str) -> str | None:
        """The CNIC that owns a ticket (server side only: never shown), or None."""
        ...

    async def grievance_for_owner(self, cnic: str, ticket_id: str) -> GrievanceOut | None:
        """The grievance if `cnic` owns it, else None (the same for someone else's and none)."""
        ...

    async def grievances_for_owner(self, cnic: str) -> list[GrievanceOut]:
        """The verified person's grievances, newest first."""
        ...
