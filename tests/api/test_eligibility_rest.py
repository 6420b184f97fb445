"""`GET /v1/eligibility/{cnic}`, `/healthz`, `/readyz` and problem documents."""

from __future__ import annotations

import pytest

from tests.conftest import ELIGIBLE, ELIGIBLE_WIFE, NOT_ELIGIBLE, NOT_FOUND, UNDER_REVIEW


@pytest.mark.parametrize(
    ("cnic", "status", "masked"),
    [
        (ELIGIBLE, "eligible", "35202-*******-1"),
        ("35202-1234567-2", "eligible", "35202-*******-2"),
        ("۳۵۲۰۲۱۲۳۴۵۶۷۲", "eligible", "35202-*******-2"),
        (NOT_ELIGIBLE, "not_eligible", "42101-*******-3"),
        (UNDER_REVIEW, "under_review", "17301-*******-2"),
        (NOT_FOUND, "not_found", "61101-*******-7"),
    ],
)
async def test_coarse_status(client, registry, cnic, status, masked):
    response = await client.get(f"/v1/eligibility/{cnic}")
    assert response.status_code == 200
    assert response.json() == {"cnic_masked": masked, "status": status}


async def test_coarse_answer_holds_nothing_private(client, registry):
    body = (await client.get(f"/v1/eligibility/{ELIGIBLE_WIFE}")).text
    for private in ("Nasreen", "Lahore", "kafaalat", "13500", ELIGIBLE_WIFE):
        assert private not in body


@pytest.mark.parametrize("bad", ["123", "abcdefghijklm", "9520212345671", "3520212345671000", "😀"])
async def test_not_a_cnic_is_a_problem(client, registry, bad):
    response = await client.get(f"/v1/eligibility/{bad}")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422 and problem["title"] == "Not a CNIC"


async def test_unknown_path_is_a_problem(client):
    response = await client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_health(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"


async def test_openapi_is_served(client):
    spec = (await client.get("/openapi.json")).json()
    assert "/v1/eligibility/{cnic}" in spec["paths"]


async def test_metrics_count_requests_by_route_not_by_cnic(client, registry):
    await client.get("/v1/eligibility/3520212345671")
    body = (await client.get("/metrics")).text
    assert 'route="/v1/eligibility/{cnic}"' in body
    assert "3520212345671" not in body
    assert "rabta_http_request_seconds_bucket" in body


async def test_security_headers(client, registry):
    public = await client.get("/v1/eligibility/3520212345671")
    assert public.headers["x-content-type-options"] == "nosniff"
    assert public.headers["x-frame-options"] == "DENY"
    assert "strict-transport-security" not in public.headers  # development: no TLS in front
    private = await client.get("/v1/me")
    assert private.headers["cache-control"] == "no-store"


async def test_openapi_declares_the_partner_key_on_every_v1_call(client):
    """Partners learn the key's header from /openapi.json, and /docs can send it; no call needs
    it, and the calls that need a bearer token still need one."""
    spec = (await client.get("/openapi.json")).json()
    scheme = spec["components"]["securitySchemes"]["PartnerKey"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "X-API-Key")
    v1 = {
        (path, method): operation
        for path, methods in spec["paths"].items()
        if path.startswith("/v1/")
        for method, operation in methods.items()
    }
    assert ("/v1/eligibility/{cnic}", "get") in v1 and ("/v1/me", "get") in v1
    for (path, _), operation in v1.items():
        security = operation["security"]
        assert any("PartnerKey" in requirement for requirement in security), path
        without_key = [{k: v for k, v in r.items() if k != "PartnerKey"} for r in security]
        if path.startswith("/v1/me"):
            assert all(r == {"HTTPBearer": []} for r in without_key), path
        else:
            assert {} in security, path  # anonymous calls are allowed, per IP
    assert "security" not in spec["paths"]["/healthz"]["get"]


async def test_openapi_documents_readyz_503(client, registry):
    spec = (await client.get("/openapi.json")).json()
    responses = spec["paths"]["/readyz"]["get"]["responses"]
    assert set(responses) == {"200", "503"}
    schema = responses["503"]["content"]["application/json"]["schema"]
    assert schema["properties"]["status"]["enum"] == ["ready", "unavailable"]
    ready = (await client.get("/readyz")).json()
    assert ready["status"] in schema["properties"]["status"]["enum"]
    assert set(schema["required"]) <= set(ready)


async def test_a_partner_key_from_the_docs_still_works_as_before(client, db, registry):
    """Declaring the key changes nothing: an empty key is still a wrong one."""
    response = await client.get(f"/v1/eligibility/{ELIGIBLE}", headers={"X-API-Key": ""})
    assert response.status_code == 401
