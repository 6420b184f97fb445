"""Prometheus metrics (`GET /metrics`): requests and latency per route, messages per channel,
language and intent, grievances filed; the rate limiter and the outbox count their own.

With several uvicorn workers, set PROMETHEUS_MULTIPROC_DIR to a shared empty folder so
`/metrics` adds up every worker (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import time
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.routing import Match, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import RuntimeDep
from api.logs import REQUEST_ID, REQUEST_SUMMARY
from api.outbox.service import CHANNELS
from api.runtime import Runtime

log = logging.getLogger(__name__)

REQUESTS = Counter(
    "rabta_http_requests_total", "HTTP requests by route and status.", ["method", "route", "status"]
)
#: Latency buckets, in seconds. Past 5 s they mark what an operator acts on: a message not
#: answered within 8 s (`RABTA_SURGE_ANSWER_WITHIN_MS`) is held, Twilio gives up on a webhook
#: at 15 s, and a request held behind a stalled database can take 30 s and more (`+Inf`). Each
#: bucket is one series per route and worker: below 5 ms nothing is worth telling apart, so
#: the 2 ms bucket made room for them.
LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 8.0, 15.0, 30.0)
LATENCY = Histogram(
    "rabta_http_request_seconds",
    "HTTP request latency by route.",
    ["route"],
    buckets=LATENCY_BUCKETS,
)
MESSAGES = Counter(
    "rabta_messages_total",
    "Inbound messages answered, by channel, language and intent.",
    ["channel", "language", "intent"],
)
REPLAYS = Counter("rabta_message_replays_total", "Replayed inbound messages.", ["channel"])
SMS_SEGMENTS = Counter(
    "rabta_sms_reply_segments_total", "SMS segments of replies, by encoding.", ["encoding"]
)
GRIEVANCES = Counter(
    "rabta_grievances_filed_total",
    "Grievances filed, by category and channel.",
    ["category", "channel"],
)

router = APIRouter(tags=["operations"])


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return DEFAULT_REGISTRY


#: How long a scrape waits for the outbox's backlog before leaving it out.
BACKLOG_TIMEOUT_SECONDS = 1.0


@router.get("/metrics", include_in_schema=False)
async def metrics(runtime: RuntimeDep) -> Response:
    body = generate_latest(_registry()) + await _outbox_backlog(runtime)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


async def _outbox_backlog(runtime: Runtime) -> bytes:
    """The outbox's backlog as the database has it now, whichever process delivers it: a
    `rabta worker` that is not running, or cannot keep up, shows here as
    `rabta_outbox_oldest_due_seconds` growing. Left out when the database does not answer
    within a second (`/readyz` says so)."""
    from api.outbox.service import backlog

    try:
        async with asyncio.timeout(BACKLOG_TIMEOUT_SECONDS):
            found = await backlog(runtime.db)
    except Exception as exc:
        log.info("metrics: outbox backlog not read: %s", type(exc).__name__)
        return b""
    waiting = GaugeMetricFamily(
        "rabta_outbox_waiting",
        "Outbox messages not yet sent (due, being sent, or to be tried again later).",
        labels=["channel"],
    )
    due = GaugeMetricFamily(
        "rabta_outbox_due",
        "Outbox messages due and not being sent (waiting for a worker).",
        labels=["channel"],
    )
    oldest = GaugeMetricFamily(
        "rabta_outbox_oldest_due_seconds",
        "How long the most overdue outbox message has waited past its time (0: none).",
        labels=["channel"],
    )
    for channel in sorted(CHANNELS | found.keys()):
        counts = found.get(channel)
        waiting.add_metric([channel], counts.waiting if counts else 0)
        due.add_metric([channel], counts.due if counts else 0)
        oldest.add_metric([channel], counts.oldest_due_seconds if counts else 0.0)
    registry = CollectorRegistry()
    registry.register(_Families(waiting, due, oldest))
    return generate_latest(registry)


class _Families(Collector):
    def __init__(self, *families: Metric) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


#: The methods counted by name; any other is `other`. A client may send any token as its
#: method (`FOO1`, `FOO2`, …), and each would be a series of its own.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _method(scope: Scope) -> str:
    method = str(scope["method"])
    return method if method in _METHODS else "other"


#: A caller's own `X-Request-ID` (a load balancer's, a partner's) is kept when it looks like one.
_CALLERS_ID = re.compile(rb"[A-Za-z0-9._:-]{8,64}")


def _request_id(scope: Scope) -> bytes:
    """The request's id: the caller's `X-Request-ID` if it gave a sane one, else a fresh one."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id" and _CALLERS_ID.fullmatch(value):
            return value
    return secrets.token_hex(8).encode()


class RequestMetrics:
    """Counts every request by its route template (never the raw path: it may hold a CNIC)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        #: The app's plain Starlette routes' paths by endpoint (`_route_of`), read once.
        self._plain: dict[Any, str] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        route: str | None = None
        request_id = _request_id(scope)
        REQUEST_ID.set(request_id.decode())
        REQUEST_SUMMARY.set(None)

        async def tracking_send(message: Message) -> None:
            nonlocal status, route
            if message["type"] == "http.response.start":
                status = message["status"]
                route = self._route_of(scope)
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id)]
                # uvicorn writes the access line as it sends this: it carries these as fields.
                REQUEST_SUMMARY.set(
                    {
                        "method": _method(scope),
                        "route": route,
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    }
                )
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            if route is None:  # no answer started (the client went away)
                route = self._route_of(scope)
            REQUESTS.labels(_method(scope), route, str(status)).inc()
            LATENCY.labels(route).observe(time.perf_counter() - started)

    def _route_of(self, scope: Scope) -> str:
        """The template of the route that answered. FastAPI's router records its own routes
        in the scope; a plain Starlette route (the SMS and USSD webhooks, the docs' pages) or
        mount (the console's static files) leaves only its endpoint there, which was counted as
        `unmatched` before."""
        route = scope.get("route")
        path = getattr(route, "path_format", None) or getattr(route, "path", None)
        if path:
            return str(path)
        endpoint = scope.get("endpoint")
        if endpoint is None:
            return self._matching(scope)
        if self._plain is None:
            routes = getattr(getattr(scope.get("app"), "router", None), "routes", ())
            self._plain = {
                (r.app if isinstance(r, Mount) else r.endpoint): r.path_format
                for r in routes
                if type(r) in (Route, Mount)
            }
        return self._plain.get(endpoint, "unmatched")

    @staticmethod
    def _matching(scope: Scope) -> str:
        """The template of the route a request that never reached the router (refused by the
        load-shedding gate, or its body too large) was for."""
        for route in getattr(getattr(scope.get("app"), "router", None), "routes", ()):
            match, _ = route.matches(scope)
            if match is not Match.FULL:
                continue
            path = getattr(route, "path_format", None)
            if path:  # the plain routes: the SMS and USSD webhooks
                return str(path)
            # A router FastAPI included, which names its route only once it handles the
            # request: its first segment (`/v1/*`), never the raw path (it may hold a CNIC).
            return "/" + str(scope["path"]).strip("/").split("/", 1)[0] + "/*"
        return "unmatched"
