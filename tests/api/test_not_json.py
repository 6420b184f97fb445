"""A `/v1` body that is declared JSON but is not JSON is a 400 problem (RFC 9110 §15.5.1: the
request's syntax is malformed), as `/openapi.json` says; its `detail` says where the JSON
breaks, by line and column, and never repeats what was sent. A body that is JSON but not what
the call takes stays a 422 with `errors` (§15.5.21: the syntax is right, the content is not)."""

from __future__ import annotations

import re

import pytest

from api.problems import NOT_JSON
from tests.conftest import ELIGIBLE

pytestmark = pytest.mark.usefixtures("registry")

BODY_ROUTES = ["/v1/otp", "/v1/otp/verify", "/v1/me/grievances"]

JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (
            b"{not json",
            "The body is not JSON: expecting property name enclosed in double quotes "
            "at line 1, column 2.",
        ),
        # The CNIC is read, then the JSON breaks after it: the answer names where, not what.
        (
            f'{{"cnic": "{ELIGIBLE}"'.encode(),
            "The body is not JSON: expecting ',' delimiter at line 1, column 25.",
        ),
        (
            f'{{\n  "cnic": "{ELIGIBLE}",\n}}'.encode(),
            "The body is not JSON: expecting property name enclosed in double quotes "
            "at line 3, column 1.",
        ),
        (
            f'{{"cnic": "{ELIGIBLE}\t"}}'.encode(),
            "The body is not JSON: invalid control character at line 1, column 24.",
        ),
        (
            f'{{"cnic": "{ELIGIBLE}"}} {{"cnic": "{ELIGIBLE}"}}'.encode(),
            "The body is not JSON: extra data at line 1, column 27.",
        ),
    ],
)
@pytest.mark.parametrize("path", BODY_ROUTES)
async def test_broken_json_is_a_400_that_says_where(client, path, body, detail):
    response = await client.post(path, content=body, headers=JSON)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    where = re.search(r"line (\d+), column (\d+)\.$", detail)
    assert where
    assert problem == {
        "type": NOT_JSON,
        "title": "Body is not JSON",
        "status": 400,
        "detail": detail,
        "instance": path,
        "line": int(where[1]),
        "column": int(where[2]),
    }
    assert ELIGIBLE not in response.text


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (
            b'{"cnic": "\xff\xfe"}',
            "The body is not JSON: it is not UTF-8 text (byte 11 is not UTF-8).",
        ),
        (b"[" * 60_000, "The body is not JSON that can be read: it is nested too deeply."),
    ],
    ids=["not-utf-8", "too-deep"],
)
async def test_a_body_json_cannot_decode_is_a_400_that_says_why(client, body, detail):
    response = await client.post("/v1/otp", content=body, headers=JSON)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["detail"] == detail
    # Nowhere to point at: the type says what, and no line or column is made up.
    assert problem["type"] == NOT_JSON
    assert "line" not in problem and "column" not in problem


async def test_json_that_is_not_what_the_call_takes_is_still_422(client):
    response = await client.post("/v1/otp", json={"cnic": ELIGIBLE, "extra": 1})
    assert response.status_code == 422
    problem = response.json()
    assert [error["loc"] for error in problem["errors"]] == [["body", "extra"]]


async def test_the_400_is_documented_as_broken_json(client):
    spec = (await client.get("/openapi.json")).json()
    for path in BODY_ROUTES:
        response = spec["paths"][path]["post"]["responses"]["400"]
        schema = response["content"]["application/problem+json"]["schema"]
        assert schema["allOf"][0] == {"$ref": "#/components/schemas/Problem"}
        assert schema["allOf"][1]["properties"]["type"]["enum"] == [NOT_JSON]
        assert "not JSON" in response["description"]
        assert "line and column" in response["description"]
