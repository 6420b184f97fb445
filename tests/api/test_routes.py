"""How the application's routes are laid out: the docs' sections and the order routes are tried."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI, Response
from fastapi.routing import APIRoute
from starlette.routing import Route

from api.main import OPENAPI_TAGS, create_app
from api.openapi import plain_operations
from api.settings import Settings
from api.webhooks import twilio, ussd


def test_every_documented_operation_has_a_listed_tag(settings: Settings):
    schema = create_app(settings).openapi()
    used = {tag for path in schema["paths"].values() for op in path.values() for tag in op["tags"]}
    listed = [tag["name"] for tag in OPENAPI_TAGS]
    assert used <= set(listed), f"add {sorted(used - set(listed))} to OPENAPI_TAGS"
    assert [tag["name"] for tag in schema["tags"]] == listed
    assert listed[0] == "eligibility"  # what a partner opens the docs for


def _paths_in_order(app: FastAPI) -> list[str]:
    """The API routes' paths in the order the app's router tries them (FastAPI keeps an
    included router as one entry, tried where it was included; older versions copy its
    routes in at that place)."""
    paths = []
    for entry in app.router.routes:
        router = getattr(entry, "original_router", None)
        routes = router.routes if router is not None else [entry]
        # FastAPI's routes, and the SMS webhook's plain Starlette one (not the docs' pages).
        paths += [
            route.path
            for route in routes
            if isinstance(route, APIRoute)
            or (isinstance(route, Route) and route.path.startswith("/webhooks/"))
        ]
    return paths


def test_the_webhooks_are_tried_first(settings: Settings):
    # A surge is webhooks: each route tried before the right one costs every message a regex.
    paths = _paths_in_order(create_app(settings))
    webhooks = [path for path in paths if path.startswith("/webhooks/")]
    assert paths[: len(webhooks)] == webhooks
    assert paths[0] == "/webhooks/twilio/messaging"
    assert {"/webhooks/ussd", "/webhooks/telegram", "/webhooks/twilio/status"} <= set(webhooks)


@pytest.mark.parametrize(
    ("route", "endpoint", "errors"),
    [
        (twilio.route, twilio.messaging, {"400", "403", "413", "415", "503"}),
        (ussd.route, ussd.ussd, {"400", "413", "415", "503"}),
    ],
    ids=["sms", "ussd"],
)
def test_the_plain_webhooks_are_documented_as_fastapi_would_document_them(
    settings: Settings, route, endpoint, errors
):
    """The SMS and USSD webhooks are plain Starlette routes (FastAPI's machinery around them
    cost 5 % of a message); the docs describe each as FastAPI describes the same endpoint
    declared its own way."""
    fastapi_way = FastAPI()
    fastapi_way.post(route.path, tags=["webhooks"], response_class=Response)(endpoint)
    expected = fastapi_way.openapi()["paths"][route.path]["post"]
    app = create_app(settings)
    ours = plain_operations(app)[route.path]["post"]
    for field in ("tags", "summary", "description", "operationId"):
        assert ours[field] == expected[field], field
    documented = app.openapi()["paths"][route.path]["post"]
    assert documented["requestBody"]["content"]["application/x-www-form-urlencoded"]
    assert set(documented["responses"]) == {"200"} | errors


async def test_every_route_is_counted_under_its_own_template(client, registry):
    """FastAPI's router records the route it picked in the scope for its own routes only: the
    SMS and USSD webhooks and the docs' pages (plain Starlette routes), the console's static
    files (a mount) and its home page (a route of a router included with a prefix, which FastAPI
    keeps apart) were counted as `unmatched` in the request metrics and their latency
    histogram, and the other console pages under their path without `/agent`."""
    from tests.api.test_twilio_webhook import URL, sms
    from tests.conftest import ELIGIBLE, ELIGIBLE_PHONE
    from tests.ussd.conftest import ussd_form

    assert (await client.post(URL, data=sms(ELIGIBLE, "SMroute0001"))).status_code == 200
    ussd_hit = ussd_form("ATUid_route", ELIGIBLE_PHONE, "")
    assert (await client.post("/webhooks/ussd", data=ussd_hit)).status_code == 200
    assert (await client.get("/openapi.json")).status_code == 200
    assert (await client.get("/agent/static/console.css")).status_code == 200
    assert (await client.get("/agent/login")).status_code == 200
    assert (await client.get("/no/such/page")).status_code == 404
    body = (await client.get("/metrics")).text
    for method, route, status in (
        ("POST", URL, "200"),
        ("POST", "/webhooks/ussd", "200"),
        ("GET", "/openapi.json", "200"),
        ("GET", "/agent/static/{path}", "200"),
        ("GET", "/agent/login", "200"),  # a console page: its router has the prefix itself
        ("GET", "unmatched", "404"),
    ):
        labels = f'method="{method}",route="{route}",status="{status}"'
        assert f"rabta_http_requests_total{{{labels}}}" in body, route
        if route != "unmatched":
            assert f'rabta_http_request_seconds_count{{route="{route}"}}' in body
    assert 'route="unmatched",status="200"' not in body
    assert all(
        route.startswith("/")
        for route in re.findall(r'route="([^"]*)"', body)
        if route != "unmatched"
    )
