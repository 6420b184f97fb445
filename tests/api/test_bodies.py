"""Bodies `/v1` cannot take are refused with the status that says why: 413 for one over the size
limit however it is sent, 415 for one that is not declared JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY

from tests.conftest import ELIGIBLE

pytestmark = pytest.mark.usefixtures("registry")


async def _chunks(total: int, size: int = 8192) -> AsyncIterator[bytes]:
    """A JSON body streamed in chunks, with no Content-Length (Transfer-Encoding: chunked)."""
    yield b'{"cnic": "'
    for _ in range(total // size):
        yield b"1" * size
    yield b'"}'


@pytest.mark.parametrize("path", ["/v1/otp", "/v1/otp/verify", "/v1/me/grievances"])
async def test_a_chunked_body_over_the_limit_is_413(client, settings, path):
    response = await client.post(
        path,
        content=_chunks(settings.max_body_bytes + 8192),
        headers={"content-type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 413
    assert problem["detail"] == f"Request bodies are limited to {settings.max_body_bytes} bytes."


async def test_the_same_body_with_content_length_gets_the_same_answer(client, settings):
    body = b'{"cnic": "' + b"1" * (settings.max_body_bytes + 8192) + b'"}'
    declared = await client.post(
        "/v1/otp", content=body, headers={"content-type": "application/json"}
    )
    chunked = await client.post(
        "/v1/otp",
        content=_chunks(settings.max_body_bytes + 8192),
        headers={"content-type": "application/json"},
    )
    assert declared.status_code == chunked.status_code == 413
    assert declared.json() == chunked.json()


async def test_a_chunked_body_under_the_limit_is_read(client):
    async def small() -> AsyncIterator[bytes]:
        yield b'{"cnic": '
        yield f'"{ELIGIBLE}"}}'.encode()

    response = await client.post(
        "/v1/otp", content=small(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 202, response.text


@pytest.mark.parametrize("path", ["/v1/otp", "/v1/otp/verify", "/v1/me/grievances"])
async def test_a_body_without_a_content_type_is_415(client, path):
    response = await client.post(path, content=f'{{"cnic": "{ELIGIBLE}"}}'.encode())
    assert "content-type" not in response.request.headers
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 415


async def test_json_with_parameters_is_still_json(client):
    response = await client.post(
        "/v1/otp",
        content=f'{{"cnic": "{ELIGIBLE}"}}'.encode(),
        headers={"content-type": "Application/JSON; charset=utf-8"},
    )
    assert response.status_code == 202, response.text


async def test_the_request_metrics_count_the_413(client, settings):
    def counted(status: str) -> float:
        labels = {"method": "POST", "route": "/v1/otp", "status": status}
        return REGISTRY.get_sample_value("rabta_http_requests_total", labels) or 0.0

    before = {status: counted(status) for status in ("400", "413")}
    await client.post(
        "/v1/otp",
        content=_chunks(settings.max_body_bytes + 8192),
        headers={"content-type": "application/json"},
    )
    assert counted("413") == before["413"] + 1
    assert counted("400") == before["400"]
