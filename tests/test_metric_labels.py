"""No `/metrics` label holds what a caller sent: hostile paths, methods and messages through
every channel leave only route templates, known languages, channels and statuses, so a scrape
shows no CNIC, phone or ticket and the series stay bounded however the service is hit."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

from bot.i18n import LANGUAGES
from tests.conftest import ELIGIBLE, ELIGIBLE_PHONE, sms_form
from tests.ussd.conftest import ussd_form

HOSTILE_PATHS = [
    "/v1/eligibility/35202%E2%80%931234567%E2%80%931",
    "/v1/eligibility/35202%2F1234567%2F1",
    "/v1/eligibility/%DB%B3%DB%B5%DB%B2%DB%B0%DB%B2%DB%B1%DB%B2%DB%B3%DB%B4%DB%B5%DB%B6%DB%B7%DB%B1",
    f"/v1/eligibility/{ELIGIBLE}/../../{ELIGIBLE}",
    "/v1/me/grievances/G-7K3M9Q",
    f"/v1/{ELIGIBLE}",
    f"/{ELIGIBLE}",
    f"/agent/{ELIGIBLE}",
    f"/agent/static/..%2F..%2F{ELIGIBLE}",
    f"/webhooks/{ELIGIBLE}",
    f"/metrics/{ELIGIBLE}",
    f"/docs/{ELIGIBLE}",
    f"//v1//eligibility//{ELIGIBLE}",
    f"/v1/eligibility/{ELIGIBLE}?phone=%2B923001234567",
]
#: What each bounded label may hold, besides the route (checked against the app's routes).
CHANNELS = {"sms", "whatsapp", "ussd", "telegram", "unknown", "api"}
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}


def _paths(routes, prefix: str = "") -> set[str]:
    """Every route template, those of routers the app includes too."""
    found: set[str] = set()
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            found |= _paths(included.routes, prefix + route.include_context.prefix)
        elif getattr(route, "path_format", None):
            found.add(prefix + route.path_format)
    return found


def _templates(app) -> set[str]:
    paths = _paths(app.router.routes)
    assert "/v1/eligibility/{cnic}" in paths, paths
    families = {"/" + path.strip("/").split("/", 1)[0] + "/*" for path in paths if path}
    return paths | families | {"unmatched"}


#: A labelled series: its metric family and its labels.
Series = tuple[str, frozenset[tuple[str, str]]]


def _series(scraped: str) -> set[Series]:
    return {
        (family.name, frozenset(sample.labels.items()))
        for family in text_string_to_metric_families(scraped)
        if family.name.startswith("rabta_")
        for sample in family.samples
    }


async def test_no_label_holds_what_a_caller_sent(app, client, registry):
    # The counters are the process's: the series other tests' apps made (a probe route, an
    # outbox message's status) are in them already; what this test's requests add is held to
    # bounded values.
    earlier = _series((await client.get("/metrics")).text)
    for path in HOSTILE_PATHS:
        for method in ("GET", "HEAD", "FOO"):
            response = await client.request(method, path)
            assert response.status_code < 500, (method, path, response.status_code)
    messages = [
        "LANG ZZ",
        "LANG de-DE",
        "LANG 3520212345671",
        "35202–1234567–1",
        "TRACK G-7K3M9Q",
        "۰۳۰۰۱۲۳۴۵۶۷",
    ]
    for n, body in enumerate(messages):
        for sender in (ELIGIBLE_PHONE, f"whatsapp:{ELIGIBLE_PHONE}"):
            form = sms_form(body, f"SMlabels{n}{len(sender)}", sender)
            response = await client.post("/webhooks/twilio/messaging", data=form)
            assert response.status_code == 200, response.text
    for text in ("", "9", f"1*{ELIGIBLE}", "1*LANG ZZ*%"):
        form = ussd_form("ATUid_labels", ELIGIBLE_PHONE, text)
        response = await client.post("/webhooks/ussd", data=form)
        assert response.status_code == 200, response.text

    scraped = (await client.get("/metrics")).text
    templates = _templates(app)
    languages = {*LANGUAGES, "none"}
    everything: dict[str, set[str]] = {}
    added: dict[str, set[str]] = {}
    http_statuses: set[str] = set()
    for family, labels in _series(scraped):
        for name, value in labels:
            everything.setdefault(name, set()).add(value)
        if (family, labels) in earlier:
            continue
        for name, value in labels:
            added.setdefault(name, set()).add(value)
        if family == "rabta_http_requests":
            http_statuses.add(dict(labels)["status"])
    # What was sent was counted, under bounded names.
    assert {"unmatched", "/v1/eligibility/{cnic}", "/webhooks/ussd"} <= everything["route"]
    assert "other" in everything["method"] and {"sms", "whatsapp", "ussd"} <= everything["channel"]
    assert added.get("route", set()) <= templates, added["route"] - templates
    assert added.get("method", set()) <= METHODS, added["method"]
    assert all(re.fullmatch(r"[1-5][0-9]{2}|499", s) for s in http_statuses), http_statuses
    assert added.get("language", set()) <= languages, added["language"] - languages
    assert added.get("channel", set()) <= CHANNELS, added["channel"] - CHANNELS
    for name, values in added.items():
        if name == "partner":  # named by an operator (`rabta partner create`), not a caller
            continue
        for value in values:
            assert not re.search(r"[0-9]{5}|G-[0-9A-Z]{5}|%|\+92", value), (name, value)
