"""`/v1/me…`: private data, only ever about the CNIC the bearer token was issued for."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter

from api.deps import CurrentBeneficiary, RegistrySessionDep, SettingsDep
from api.eligibility import service as eligibility_service
from api.identity import Cnic
from api.me.schemas import MeOut, ProgrammeOut
from api.payments import service as payment_service
from api.payments.schemas import PaymentOut, PaymentsOut
from api.programmes import get_programmes

router = APIRouter(prefix="/v1/me", tags=["me"])


@router.get("", response_model=MeOut)
async def me(cnic: CurrentBeneficiary, session: RegistrySessionDep, settings: SettingsDep) -> MeOut:
    """Status, programmes and household district of the verified person."""
    result = await eligibility_service.check_eligibility(
        session, cnic=Cnic(cnic), cutoff=settings.pmt_cutoff, full=True
    )
    programmes = get_programmes()
    return MeOut(
        cnic_masked=result.cnic_masked,
        status=result.status,
        programmes=[
            ProgrammeOut(
                programme=p.programme, name=programmes.name(p.programme, "en"), status=p.status
            )
            for p in result.programmes
        ],
        district=result.district,
        tehsil=result.tehsil,
        as_of=dt.datetime.now(dt.UTC).date(),
    )


@router.get("/payments", response_model=PaymentsOut)
async def my_payments(cnic: CurrentBeneficiary, session: RegistrySessionDep) -> PaymentsOut:
    """Every payment of the verified person, newest window first."""
    payments = await payment_service.list_payments(session, cnic=cnic)
    return PaymentsOut(
        payments=[PaymentOut.model_validate(p, from_attributes=True) for p in payments]
    )
