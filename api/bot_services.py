"""The domain services the conversation calls (bot.ports.Services), in-process: no HTTP hop."""

from __future__ import annotations

from api.eligibility import service as eligibility_service
from api.eligibility.schemas import EligibilityResult
from api.identity import Cnic
from api.runtime import Runtime


class RabtaServices:
    """Implements `bot.ports.Services` over the registry database."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    async def eligibility(self, cnic: Cnic) -> EligibilityResult:
        async with self._runtime.db.registry_sessions() as session:
            return await eligibility_service.check_eligibility(
                session, cnic=cnic, cutoff=self._runtime.settings.pmt_cutoff
            )
