"""`POST /v1/otp` and `POST /v1/otp/verify`: a partner app proves who its user is.

`POST /v1/otp` answers the same whether or not the CNIC exists or has a mobile: the registry
look-up happens either way, an unknown CNIC gets a decoy request, and the SMS is queued after the
answer has left, so neither the content nor the timing of the answer tells.
"""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, status

from api.deps import RuntimeDep
from api.eligibility.routes import not_a_cnic
from api.identity import Cnic, InvalidCnic
from api.otp.schemas import OtpRequestIn, OtpRequestOut, OtpVerifyIn, TokenOut
from api.otp.service import CheckOutcome, IssueOutcome, OtpUnavailable
from api.problems import (
    CODE_EXPIRED,
    CODE_RECENTLY_SENT,
    NOT_A_CNIC,
    TOO_MANY_CODES,
    TOO_MANY_WRONG_CODES,
    VERIFICATION_UNAVAILABLE,
    WRONG_CODE,
    Problem,
    documented,
)
from api.verification import deliver_code, request_code

router = APIRouter(prefix="/v1/otp", tags=["verification"])

UNAVAILABLE = "Verification is unavailable for a moment. Please try again shortly."


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OtpRequestOut,
    responses=documented(NOT_A_CNIC, CODE_RECENTLY_SENT, TOO_MANY_CODES, VERIFICATION_UNAVAILABLE),
)
async def request_otp(
    body: OtpRequestIn, runtime: RuntimeDep, background: BackgroundTasks
) -> OtpRequestOut:
    """Send a code to the mobile registered for the CNIC (if there is one)."""
    try:
        cnic = Cnic.parse(body.cnic)
    except InvalidCnic:
        raise not_a_cnic() from None
    try:
        request = await request_code(runtime, cnic=cnic)
    except OtpUnavailable:
        raise _unavailable() from None
    issued = request.issued
    retry = {"Retry-After": str(issued.retry_after)}
    if issued.outcome is IssueOutcome.COOLDOWN:
        detail = "A code was sent recently for this CNIC."
        raise Problem(429, detail, type_=CODE_RECENTLY_SENT, headers=retry)
    if issued.outcome is not IssueOutcome.ISSUED:
        detail = "Too many codes for this CNIC this hour."
        raise Problem(429, detail, type_=TOO_MANY_CODES, headers=retry)
    assert issued.request_id is not None
    background.add_task(deliver_code, runtime, request, language=None)
    return OtpRequestOut(request_id=issued.request_id, expires_in=runtime.settings.otp_ttl_seconds)


@router.post(
    "/verify",
    response_model=TokenOut,
    responses=documented(WRONG_CODE, CODE_EXPIRED, TOO_MANY_WRONG_CODES, VERIFICATION_UNAVAILABLE),
)
async def verify_otp(body: OtpVerifyIn, runtime: RuntimeDep) -> TokenOut:
    """Exchange the code for a short-lived bearer token bound to that one CNIC."""
    try:
        checked = await runtime.otp.check(request_id=body.request_id, code=body.code)
        if checked.outcome is CheckOutcome.VERIFIED and checked.cnic:
            token = await runtime.tokens.issue(cnic=checked.cnic)
            return TokenOut(access_token=token, expires_in=runtime.tokens.ttl_seconds)
    except OtpUnavailable:
        raise _unavailable() from None
    # SPEC §3 allows 5 wrong tries per code: each is 401, the fifth included; past them, 429.
    if checked.outcome is CheckOutcome.EXHAUSTED and not checked.last_try:
        raise Problem(
            429,
            "Too many wrong codes: request a new one.",
            type_=TOO_MANY_WRONG_CODES,
            headers={"Retry-After": str(checked.retry_after)},
        )
    if checked.last_try:
        detail = "Wrong code; no tries left: request a new one."
        raise Problem(401, detail, type_=WRONG_CODE, tries_left=0)
    if checked.outcome is CheckOutcome.WRONG:
        left = checked.tries_left
        detail = f"Wrong code; {left} {'try' if left == 1 else 'tries'} left."
        raise Problem(401, detail, type_=WRONG_CODE, tries_left=left)
    raise Problem(401, "The code has expired or was already used.", type_=CODE_EXPIRED)


def _unavailable() -> Problem:
    """The 503 of verification that cannot send or check codes for a moment."""
    return Problem(503, UNAVAILABLE, type_=VERIFICATION_UNAVAILABLE, headers={"Retry-After": "30"})
