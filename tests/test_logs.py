"""Logs never hold a full CNIC, phone number or OTP (SPEC §3)."""

from __future__ import annotations

import json
import logging
import re
import time
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.identity import Cnic
from api.logs import _mask_all, install_masking, mask_sensitive
from tests.conftest import rabta_serve


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("cnic 3520212345671", "cnic 35202-*******-1"),
        ("cnic 35202-1234567-1 ok", "cnic 35202-*******-1 ok"),
        ("from +923001234567", "from +92300****567"),
        ("from 03001234567", "from +92300****567"),
        ("from whatsapp:+923001234567", "from whatsapp:+92300****567"),
        ("code 493021 sent", "code ****** sent"),
        ("id 42 took 12 ms", "id 42 took 12 ms"),
        # Every way the API reads a CNIC is masked, an access line's path included.
        ("GET /v1/eligibility/35202.1234567.1 200", "GET /v1/eligibility/35202-*******-1 200"),
        ("GET /v1/eligibility/35202 - 1234567 - 1", "GET /v1/eligibility/35202-*******-1"),
        ("GET /v1/eligibility/35202%201234567%201", "GET /v1/eligibility/35202-*******-1"),
        (
            "GET /v1/eligibility/35202%E2%80%931234567%E2%80%931",
            "GET /v1/eligibility/35202-*******-1",
        ),
        ("cnic ۳۵۲۰۲۱۲۳۴۵۶۷۱ sent", "cnic 35202-*******-1 sent"),
        ("cnic ٣٥٢٠٢-١٢٣٤٥٦٧-١", "cnic 35202-*******-1"),
        ("GET /v1/eligibility/" + quote("۳۵۲۰۲۱۲۳۴۵۶۷۱"), "GET /v1/eligibility/35202-*******-1"),
        ("from 0300 123 4567", "from +92300****567"),
        ("from +92 300 1234567", "from +92300****567"),
        ("code ۴۹۳۰۲۱ typed", "code ****** typed"),
        # Separators Cnic.parse refuses (a 422) still leave the number in the access line.
        ("GET /v1/eligibility/35202_1234567_1 422", "GET /v1/eligibility/35202-*******-1 422"),
        ("GET /v1/eligibility/35202/1234567/1 404", "GET /v1/eligibility/35202-*******-1 404"),
        # A mobile number without its 0 or +92, as people type their own.
        ("phone 3001234567 given", "phone +92300****567 given"),
        ("phone 300-1234567 given", "phone +92300****567 given"),
        ("took 3001 ms", "took 3001 ms"),
        # Decoded only to be read: a line with nothing to mask is kept as written.
        ("GET /agent/grievances?q=a%20b 200", "GET /agent/grievances?q=a%20b 200"),
        ("language اردو chosen", "language اردو chosen"),
        # Cnic.parse reads any number of separators anywhere, and /v1/eligibility answers 200
        # to such a path: its access line holds the whole number unless it is masked too.
        (
            "GET /v1/eligibility/35202%20%20-%20%201234567%20%20-%20%201 200",
            "GET /v1/eligibility/35202-*******-1 200",
        ),
        ("cnic 35202    1234567    1", "cnic 35202-*******-1"),
        ("cnic 35202 123 4567 1", "cnic 35202-*******-1"),
        ("cnic 3520 2123 4567 1", "cnic 35202-*******-1"),
        # Phones written in other groups, or with the operator code in brackets.
        ("from 0300 12 34 567", "from +92300****567"),
        ("from +92 300 12 34 567", "from +92300****567"),
        ("from +92 (300) 1234567", "from +92300****567"),
        ("from +92.300.123.45.67", "from +92300****567"),
    ],
)
def test_mask_sensitive(raw, masked):
    assert mask_sensitive(raw) == masked


def test_records_are_masked_whoever_logs_them(caplog):
    install_masking()
    with caplog.at_level(logging.INFO):
        logging.getLogger("any.library").info(
            "user %s phone %s otp %s", "3520212345671", "+923001234567", "123456"
        )
    text = caplog.text
    assert "3520212345671" not in text and "+923001234567" not in text and "123456" not in text
    assert "35202-*******-1" in text


@settings(max_examples=400)
@given(
    st.lists(
        st.one_of(
            st.text(alphabet="0123456789", min_size=1, max_size=14),
            st.sampled_from(
                [
                    *(
                        "-",
                        " ",
                        "+",
                        ":",
                        "bot",
                        "0092",
                        "+92",
                        "03",
                        "3",
                        "x",
                        "۳",
                        "\n",
                        ".",
                        "–",
                    ),
                    *("_", "/"),
                    *("%", "%20", "%DB%B3", "%E2%80%93"),
                ]
            ),
            st.text(max_size=4),
        ),
        max_size=12,
    ).map("".join)
)
def test_the_quick_pass_masks_exactly_what_the_full_one_does(text):
    """Text without six digits in a row, digits in groups, `bot` and a digit, a
    percent-escape or a non-ASCII character is passed through unread: the patterns could
    match nothing in it, as written or decoded."""
    assert mask_sensitive(text) == _mask_all(text)


_TYPED_SEPARATORS = st.text(alphabet=" -.\u2013\u2212\u00a0", max_size=4)


@settings(max_examples=300)
@given(
    st.text(alphabet="1234567", min_size=1, max_size=1),
    st.text(alphabet="0123456789", min_size=12, max_size=12),
    st.lists(_TYPED_SEPARATORS, min_size=12, max_size=12),
    st.booleans(),
)
def test_whatever_is_read_as_a_cnic_is_masked(first, rest, gaps, escaped):
    """A CNIC typed with separators anywhere, as many as Cnic.parse reads, in a message or
    percent-escaped in a path: the line never holds its thirteen digits."""
    digits = first + rest
    typed = digits[0] + "".join(gap + digit for gap, digit in zip(gaps, digits[1:], strict=True))
    assert Cnic.parse(typed).digits == digits
    line = f"GET /v1/eligibility/{quote(typed)} 200" if escaped else f"cnic {typed} sent"
    masked = mask_sensitive(line)
    assert digits not in re.sub(r"[^0-9]", "", masked), masked
    assert f"{digits[:5]}-*******-{digits[-1]}" in masked


def test_every_worker_of_rabta_serve_logs_masked_json_lines(migrated, redis_url, tmp_path):
    """`rabta serve --workers 2`, as deployed: each worker is a new interpreter, and logs its
    start, its access lines and its requests as masked JSON, not only the process that started
    them (uvicorn applies `logging_config` in each)."""
    if not migrated.startswith("postgresql") or not redis_url:
        pytest.skip("production mode needs PostgreSQL and Redis")
    log = tmp_path / "serve.log"
    with rabta_serve(migrated, redis_url, log) as server:
        for _ in range(4):
            response = httpx.get(f"{server.url}/v1/eligibility/3520212345671")
            assert response.status_code == 200, response.text
        deadline = time.monotonic() + 10
        while log.read_text().count("GET /v1/eligibility/") < 4:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    workers = {line["pid"] for line in lines if line["msg"].startswith("Started server process")}
    assert len(workers) == 2 and server.pid not in workers, workers
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert len(access) >= 4
    assert {line["pid"] for line in access} <= workers
    assert all(
        "35202-*******-1" in line["msg"] and "3520212345671" not in line["msg"] for line in access
    ), access


async def test_an_access_line_has_the_fields_an_operator_filters_on(app, registry, caplog):
    """`level="ERROR"` is easy; "the slow ones", "the 5xx of the USSD webhook" need the access
    line's status, route and duration as fields of their own (the route's template: never the
    path, which may hold a CNIC)."""
    import asyncio

    import uvicorn

    from api.logs import JsonFormatter
    from tests.faults.services import free_port

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            found = await http.get("/v1/eligibility/35202%201234567%201")
            missing = await http.get("/nothing/3520212345671")
    finally:
        server.should_exit = True
        await task
    assert (found.status_code, missing.status_code) == (200, 404)
    access = [
        json.loads(JsonFormatter().format(record))
        for record in caplog.records
        if record.name == "uvicorn.access"
    ]
    assert [(line["route"], line["status"]) for line in access] == [
        ("/v1/eligibility/{cnic}", 200),
        ("unmatched", 404),
    ], access
    for line in access:
        assert line["method"] == "GET" and line["level"] == "INFO"
        assert isinstance(line["duration_ms"], float) and 0 <= line["duration_ms"] < 5000
        assert line["request_id"]
        assert "1234567" not in json.dumps(line, ensure_ascii=False)
