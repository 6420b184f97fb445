"""The partner REST API: OTP flow, bearer tokens and `/v1/me` (SPEC §9)."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.conftest import (
    ELIGIBLE,
    ELIGIBLE_PHONE,
    ELIGIBLE_WIFE,
    NOT_ELIGIBLE,
    NOT_FOUND,
)


def outbox_lines(settings) -> list[dict]:
    path = settings.console_outbox
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


async def deliver(app) -> None:
    from api.outbox.senders import build_senders
    from api.outbox.service import deliver_due

    runtime = app.state.runtime
    await deliver_due(runtime.db, build_senders(runtime.settings), worker_id="test")


async def code_for(app, settings, phone: str) -> str:
    await deliver(app)
    codes = [line["body"] for line in outbox_lines(settings) if line["to"] == phone]
    assert codes, "no code was sent"
    return re.search(r"(?<![0-9])[0-9]{6}(?![0-9])", codes[-1]).group(0)


async def login(client, app, settings, cnic: str, phone: str) -> str:
    response = await client.post("/v1/otp", json={"cnic": cnic})
    assert response.status_code == 202, response.text
    request_id = response.json()["request_id"]
    code = await code_for(app, settings, phone)
    verified = await client.post("/v1/otp/verify", json={"request_id": request_id, "code": code})
    assert verified.status_code == 200, verified.text
    body = verified.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    return body["access_token"]


async def test_otp_flow_gives_a_token_for_me(client, app, settings, registry):
    token = await login(client, app, settings, ELIGIBLE_WIFE, ELIGIBLE_PHONE)
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    body = me.json()
    assert body["cnic_masked"] == "35202-*******-2" and body["status"] == "eligible"
    assert {p["programme"] for p in body["programmes"]} == {"kafaalat", "taleemi_wazaif"}
    assert body["district"] == "Lahore"
    payments = await client.get("/v1/me/payments", headers={"Authorization": f"Bearer {token}"})
    assert payments.status_code == 200
    rows = payments.json()["payments"]
    assert [p["payment_id"] for p in rows] == ["PAY-0002", "PAY-0001"]
    assert set(rows[0]) == {
        "payment_id",
        "programme",
        "tranche",
        "amount_pkr",
        "window_start",
        "window_end",
        "mode",
        "place",
        "status",
        "reason",
    }
    assert rows[0]["amount_pkr"] == 13500 and rows[0]["mode"] == "campsite"


async def test_the_code_sms_carries_nothing_personal(client, app, settings, registry):
    await client.post("/v1/otp", json={"cnic": ELIGIBLE_WIFE})
    await deliver(app)
    (line,) = [x for x in outbox_lines(settings) if x["to"] == ELIGIBLE_PHONE]
    for private in (ELIGIBLE_WIFE, "35202", "Nasreen", "13500", "Lahore"):
        assert private not in line["body"]


async def test_a_token_never_reaches_another_persons_data(client, app, settings, registry):
    token = await login(client, app, settings, ELIGIBLE_WIFE, ELIGIBLE_PHONE)
    husband = await client.get("/v1/me/payments", headers={"Authorization": f"Bearer {token}"})
    assert all(p["payment_id"].startswith("PAY-") for p in husband.json()["payments"])
    # No URL takes a CNIC to private data: these paths do not exist.
    for path in (f"/v1/me/payments/{ELIGIBLE}", f"/v1/payments/{ELIGIBLE}", f"/v1/me/{ELIGIBLE}"):
        response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 404


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer nonsense", "Basic dXNlcjpwYXNz", "Bearer rbt.forged-token-value"],
)
async def test_me_needs_a_live_token(client, registry, header):
    headers = {"Authorization": header} if header else {}
    response = await client.get("/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_unknown_and_known_cnic_get_the_same_answer(client, app, settings, registry):
    known = await client.post("/v1/otp", json={"cnic": NOT_ELIGIBLE})
    unknown = await client.post("/v1/otp", json={"cnic": NOT_FOUND})
    assert known.status_code == unknown.status_code == 202
    assert set(known.json()) == set(unknown.json()) == {"request_id", "expires_in"}
    assert known.json()["expires_in"] == unknown.json()["expires_in"]
    assert len(known.json()["request_id"]) == len(unknown.json()["request_id"])
    assert known.headers.keys() == unknown.headers.keys()
    wrong_known = await client.post(
        "/v1/otp/verify", json={"request_id": known.json()["request_id"], "code": "000000"}
    )
    wrong_unknown = await client.post(
        "/v1/otp/verify", json={"request_id": unknown.json()["request_id"], "code": "000000"}
    )
    assert wrong_known.status_code == wrong_unknown.status_code == 401
    assert wrong_known.json()["detail"] == wrong_unknown.json()["detail"]


async def test_timing_does_not_tell_whether_a_cnic_exists(client, app, settings, registry):
    """Answer times for a known and an unknown CNIC stay close (SPEC §3)."""

    async def timed(cnic: str) -> float:
        start = time.perf_counter()
        response = await client.post("/v1/otp", json={"cnic": cnic})
        elapsed = time.perf_counter() - start
        assert response.status_code == 202, response.text
        return elapsed

    await timed(NOT_ELIGIBLE)  # the first request of a test pays for connections; not timed
    known = await timed(ELIGIBLE_WIFE)
    unknown = await timed(NOT_FOUND)
    # The known CNIC really took the path that issues a code.
    assert await code_for(app, settings, ELIGIBLE_PHONE)
    # One sample each (a second request for a CNIC within a minute is refused) only guards
    # against gross differences (a query or an SMS in the path); the bench measures the
    # distributions.
    assert abs(known - unknown) < 0.25


async def test_five_wrong_codes_are_401_then_429(client, app, settings, registry):
    """SPEC §3: at most 5 wrong tries per code, each a `401` wrong code (the fifth saying none
    is left); past them `429` too many, the right code included."""
    response = await client.post("/v1/otp", json={"cnic": ELIGIBLE_WIFE})
    request_id = response.json()["request_id"]
    code = await code_for(app, settings, ELIGIBLE_PHONE)
    wrong = "000000" if code != "000000" else "111111"
    answers = [
        await client.post("/v1/otp/verify", json={"request_id": request_id, "code": wrong})
        for _ in range(5)
    ]
    assert [a.status_code for a in answers] == [401] * 5
    assert [a.json()["detail"] for a in answers[3:]] == [
        "Wrong code; 1 try left.",
        "Wrong code; no tries left: request a new one.",
    ]
    late = await client.post("/v1/otp/verify", json={"request_id": request_id, "code": code})
    assert late.status_code == 429


async def test_a_burnt_code_stays_too_many_tries(client, app, settings, registry):
    """SPEC §9: `429` too many. Once five wrong codes have burnt a code, every later try at it,
    the right code included, is still "too many" with the wait for a new code, not a 401 that
    calls the code expired and invites typing it again."""
    response = await client.post("/v1/otp", json={"cnic": ELIGIBLE_WIFE})
    request_id = response.json()["request_id"]
    code = await code_for(app, settings, ELIGIBLE_PHONE)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        await client.post("/v1/otp/verify", json={"request_id": request_id, "code": wrong})
    for typed in (code, wrong):
        late = await client.post("/v1/otp/verify", json={"request_id": request_id, "code": typed})
        assert late.status_code == 429, late.text
        assert late.headers["content-type"] == "application/problem+json"
        assert 1 <= int(late.headers["Retry-After"]) <= 60
        assert "access_token" not in late.text


async def test_resend_within_a_minute_is_429_with_retry_after(client, registry):
    assert (await client.post("/v1/otp", json={"cnic": ELIGIBLE_WIFE})).status_code == 202
    again = await client.post("/v1/otp", json={"cnic": ELIGIBLE_WIFE})
    assert again.status_code == 429
    assert 1 <= int(again.headers["retry-after"]) <= 60


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"cnic": "123"}, 422),
        ({"cnic": "😀"}, 422),
        ({}, 422),
        ({"cnic": ELIGIBLE, "extra": 1}, 422),
        ({"cnic": "1" * 1000}, 422),
    ],
)
async def test_bad_otp_requests(client, registry, body, status):
    response = await client.post("/v1/otp", json=body)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"


async def test_broken_json_and_wrong_content_type(client, registry):
    broken = await client.post(
        "/v1/otp", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400  # malformed syntax; tests/api/test_not_json.py has more
    assert broken.headers["content-type"] == "application/problem+json"
    form = await client.post("/v1/otp", data={"cnic": ELIGIBLE})
    assert form.status_code == 415
    assert form.headers["content-type"] == "application/problem+json"


async def test_redis_down_fails_closed(client, app, registry, monkeypatch, caplog):
    from redis.exceptions import ConnectionError as RedisConnectionError

    async def broken(*args, **kwargs):
        raise RedisConnectionError("Error 111 connecting to redis:6379. Connection refused.")

    runtime = app.state.runtime
    monkeypatch.setattr(runtime.otp._redis, "set", broken)
    response = await client.post("/v1/otp", json={"cnic": ELIGIBLE_WIFE})
    assert response.status_code == 503
    assert "try again" in response.json()["detail"].lower()
    # The operator sees why in the log, and nothing of the request.
    (record,) = [r for r in caplog.records if r.name == "api.otp.service"]
    assert record.levelname == "WARNING"
    assert record.getMessage() == (
        "verification unavailable: Redis ConnectionError: "
        "Error 111 connecting to redis:6379. Connection refused."
    )


@pytest.mark.parametrize("digits", ["۰۱۲۳۴۵۶۷۸۹", "٠١٢٣٤٥٦٧٨٩"])
async def test_code_typed_in_urdu_or_arabic_digits_verifies(
    client, app, settings, registry, digits
):
    """SPEC §2: input is normalised; a phone's Urdu or Arabic keyboard types the same code."""
    response = await client.post("/v1/otp", json={"cnic": ELIGIBLE_WIFE})
    request_id = response.json()["request_id"]
    code = await code_for(app, settings, ELIGIBLE_PHONE)
    typed = code.translate(str.maketrans("0123456789", digits))
    verified = await client.post("/v1/otp/verify", json={"request_id": request_id, "code": typed})
    assert verified.status_code == 200, verified.text
    assert verified.json()["token_type"] == "bearer"


async def test_too_many_wrong_codes_says_when_to_ask_again(client, app, settings, registry):
    """SPEC §4: the 429 for a burnt code carries Retry-After, the wait before POST /v1/otp can
    send a new code (the 60 s resend cooldown here), and a new code is refused until then."""
    response = await client.post("/v1/otp", json={"cnic": ELIGIBLE_WIFE})
    request_id = response.json()["request_id"]
    code = await code_for(app, settings, ELIGIBLE_PHONE)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        await client.post("/v1/otp/verify", json={"request_id": request_id, "code": wrong})
    burnt = await client.post("/v1/otp/verify", json={"request_id": request_id, "code": wrong})
    assert burnt.status_code == 429
    retry_after = int(burnt.headers["Retry-After"])
    assert 50 <= retry_after <= 60
    resend = await client.post("/v1/otp", json={"cnic": ELIGIBLE_WIFE})
    assert resend.status_code == 429
    assert int(resend.headers["Retry-After"]) <= retry_after
