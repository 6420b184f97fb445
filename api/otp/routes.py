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
from api.problems import Problem
from api.verification import deliver_code, request_code

router = APIRouter(prefix="/v1/otp", tags=["verification"])

UNAVAILABLE = "Verification is unavailable for a moment. Please try again shortly."


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OtpRequestOut,
    responses={
        422: {"description": "Not a CNIC: 13 digits, the first one 1 to 7 (`type` says so)."},
        429: {
            "description": "A code was sent for this CNIC within the resend wait, or as many "
            "codes as it may have this hour."
        },
        503: {"description": "Verification cannot send codes for a moment."},
    },
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
        raise Problem(503, UNAVAILABLE, headers={"Retry-After": "30"}) from None
    issued = request.issued
    if issued.outcome is not IssueOutcome.ISSUED:
        raise Problem(
            429,
            "A code was sent recently for this CNIC."
            if issued.outcome is IssueOutcome.COOLDOWN
            else "Too many codes for this CNIC this hour.",
            headers={"Retry-After": str(issued.retry_after)},
        )
    assert issued.request_id is not None
    background.add_task(deliver_code, runtime, request, language=None)
    return OtpRequestOut(request_id=issued.request_id, expires_in=runtime.settings.otp_ttl_seconds)


@router.post(
    "/verify",
    response_model=TokenOut,
    responses={
        401: {
            "description": "The code is wrong (`detail` says how many tries are left), has "
            "expired or was already used."
        },
        429: {"description": "Too many wrong codes for this request: ask for a new code."},
        503: {"description": "Verification cannot check codes for a moment."},
    },
)
async def verify_otp(body: OtpVerifyIn, runtime: RuntimeDep) -> TokenOut:
    """Exchange the code for a short-lived bearer token bound to that one CNIC."""
    try:
        checked = await runtime.otp.check(request_id=body.request_id, code=body.code)
        if checked.outcome is CheckOutcome.VERIFIED and checked.cnic:
            token = await runtime.tokens.issue(cnic=checked.cnic)
            return TokenOut(access_token=token, expires_in=runtime.tokens.ttl_seconds)
    except OtpUnavailable:
        raise Problem(503, UNAVAILABLE, headers={"Retry-After": "30"}) from None
    # SPEC §3 allows 5 wrong tries per code: each is 401, the fifth included; past them, 429.
    if checked.outcome is CheckOutcome.EXHAUSTED and not checked.last_try:
        raise Problem(
            429,
            "Too many wrong codes: request a new one.",
            headers={"Retry-After": str(checked.retry_after)},
        )
    if checked.last_try:
        detail = "Wrong code; no tries left: request a new one."
    elif checked.outcome is CheckOutcome.WRONG:
        left = checked.tries_left
        detail = f"Wrong code; {left} {'try' if left == 1 else 'tries'} left."
    else:
        detail = "The code has expired or was already used."
    raise Problem(401, detail)
