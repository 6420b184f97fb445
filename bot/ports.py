"""What the conversation needs from the rest of Rabta, as a Protocol: the bot never touches the
database itself (api/ implements this in-process)."""

from __future__ import annotations

from typing import Protocol

from api.eligibility.schemas import EligibilityResult
from api.identity import Cnic


class Services(Protocol):
    """Domain services the flows call, bound to one inbound message's transaction."""

    async def eligibility(self, cnic: Cnic) -> EligibilityResult:
        """The coarse eligibility of a CNIC (anyone may ask)."""
        ...
