"""Rate limits on the REST API: a partner's own quota with a valid `X-API-Key`, else per client IP,
and, for a look-up, the caller's look-ups as a sender (an anonymous caller's hourly look-ups,
`RABTA_LIMIT_SENDER`, as a phone's) and the CNIC's own limit from all senders.

Use as a router dependency: `APIRouter(prefix="/v1", dependencies=[Depends(limit_request)])`;
a route that looks up a CNIC calls `limit_lookup` instead, which counts the caller and the CNIC
in one round trip. The limiter is `app.state.rate_limiter`,
created in the lifespan.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from dataclasses import dataclass

from fastapi import Request, Response
from fastapi.security import APIKeyHeader
from prometheus_client import Counter

from api.identity import Cnic
from api.partners import find_partner_by_key, hash_api_key
from api.problems import (
    CNIC_LOOKUPS_EXHAUSTED,
    INVALID_API_KEY,
    RATE_LIMITED,
    TOO_MANY_LOOKUPS,
    Problem,
)
from api.ratelimit.service import Decision, RateLimiter, parse_limit

log = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
#: The partner key as the OpenAPI document declares it (api/openapi.py). `limit_request` reads
#: the header itself: an empty key is a wrong key (401), where this would take it for none.
PARTNER_KEY = APIKeyHeader(
    name=API_KEY_HEADER,
    scheme_name="PartnerKey",
    description=(
        "A partner's API key (optional): its calls count against the partner's own quota "
        "instead of the per-IP limit. An unknown or inactive key is refused with 401."
    ),
    auto_error=False,
)
#: An anonymous REST caller's identity among senders, as a phone's is its number.
SENDER_IP = "ip:"
#: Each look-up limit's refusal: its words and its problem type.
LOOKUPS_REFUSED = {
    "sender": ("Too many look-ups from this address", TOO_MANY_LOOKUPS),
    "cnic": ("Too many look-ups of this CNIC", CNIC_LOOKUPS_EXHAUSTED),
}
#: How long a worker trusts a key it has checked; deactivating a partner takes this long.
PARTNER_CACHE_SECONDS = 60.0


@dataclass(frozen=True)
class PartnerIdentity:
    """What a request made with a partner's key knows about that partner."""

    id: int
    name: str
    quota: str


class PartnerKeyCache:
    """Valid keys for a minute, by digest, so a partner's traffic does not query the database on
    every request. Only valid keys are kept: a flood of made-up keys cannot grow it."""

    def __init__(self, ttl: float = PARTNER_CACHE_SECONDS, max_entries: int = 1024) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._entries: dict[str, tuple[float, PartnerIdentity]] = {}

    def get(self, key_hash: str) -> PartnerIdentity | None:
        """The cached partner for a key digest, if still fresh."""
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            del self._entries[key_hash]
            return None
        return entry[1]

    def put(self, key_hash: str, partner: PartnerIdentity) -> None:
        """Remember a valid key for the cache's lifetime."""
        if len(self._entries) >= self._max_entries:
            self._entries.clear()  # partners are few; this only bounds the pathological case
        self._entries[key_hash] = (time.monotonic() + self._ttl, partner)


def get_rate_limiter(request: Request) -> RateLimiter:
    """The application's limiter (created in the lifespan)."""
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is None:
        raise RuntimeError("app.state.rate_limiter is not set: create it in the lifespan")
    return limiter


def _partner_cache(request: Request) -> PartnerKeyCache:
    cache: PartnerKeyCache | None = getattr(request.app.state, "partner_keys", None)
    if cache is None:
        cache = PartnerKeyCache()
        request.app.state.partner_keys = cache
    return cache


async def _partner_for_key(request: Request, key: str) -> PartnerIdentity | None:
    """The active partner holding `key`, from the cache or the database."""
    cache = _partner_cache(request)
    digest = hash_api_key(key)
    if (cached := cache.get(digest)) is not None:
        return cached
    runtime = request.app.state.runtime
    async with runtime.db.sessions() as session:
        partner = await find_partner_by_key(session, key)
    if partner is None or not partner.active:
        return None
    quota = partner.quota
    try:
        parse_limit(quota)
    except ValueError:
        # A quota edited by hand into nonsense must not turn the partner's traffic into 500s.
        log.warning("partner %r has an invalid quota %r; using the default", partner.name, quota)
        quota = runtime.settings.limit_partner
    identity = PartnerIdentity(id=partner.id, name=partner.name, quota=quota)
    cache.put(digest, identity)
    return identity


#: Which partner calls, and how often its quota refuses it: a partner hammering the API shows by
#: name (partners are few, and their names are not personal data).
PARTNER_CALLS = Counter(
    "rabta_partner_requests_total",
    "Calls made with a partner's API key, by partner and whether its quota allowed them.",
    ["partner", "outcome"],
)


def client_ip(request: Request) -> str:
    """The peer address; uvicorn's `proxy_headers` has already replaced it for trusted proxies.

    X-Forwarded-For is not read here: any client can write it.
    """
    return request.client.host if request.client else "unknown"


#: How much of an IPv6 address is one client's: a home, a phone or a server gets a whole /64
#: (often a /56 or /48), and picks any address inside it at will.
IPV6_CLIENT_PREFIX = 64


def limit_identity(host: str) -> str:
    """Who a per-address limit counts, given the peer address: an IPv4 address as it is (an
    IPv4-mapped IPv6 address as its IPv4 one), an IPv6 address as its /64 network, so a client
    cannot take a fresh quota with each of the 2^64 addresses of its own network."""
    try:
        address = ipaddress.ip_address(host.strip().split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        network = ipaddress.IPv6Network(f"{address}/{IPV6_CLIENT_PREFIX}", strict=False)
        return str(network)
    return str(address)


def rate_limit_headers(decision: Decision) -> dict[str, str]:
    """`RateLimit-*` headers (IETF httpapi draft): limit, remaining, seconds to reset."""
    return {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(max(0, math.ceil(decision.reset_at - time.time()))),
    }


def _refuse(decision: Decision) -> Problem:
    headers = rate_limit_headers(decision)
    headers["RateLimit-Remaining"] = "0"
    return _too_many("Too many requests", RATE_LIMITED, decision.retry_after, headers)


def _too_many(what: str, type_: str, retry_after: int, headers: dict[str, str]) -> Problem:
    """The 429 problem of `type_`, with `Retry-After` (SPEC §4) added to `headers`."""
    headers["Retry-After"] = str(retry_after)
    return Problem(
        429, f"{what}; try again in {retry_after} seconds.", type_=type_, headers=headers
    )


async def limit_request(request: Request, response: Response) -> None:
    """Router dependency: count the request against its partner's quota or its client IP;
    429 when over, 401 for an unknown or inactive API key."""
    await _limit(request, response, None)


async def limit_lookup(request: Request, response: Response, cnic: Cnic) -> None:
    """`limit_request`, then the look-up: an anonymous caller's in its window as a sender (SPEC
    §4: 10 an hour, keyed by its address as a phone's by its number) and `cnic`'s in the CNIC's
    window from all senders (20 a day), the one the bot counts, so REST and every channel share
    one budget per CNIC: all in one Redis round trip, for a route that looks a CNIC up instead
    of the router's `limit_request`. 429 when any is over.

    A caller already refused, or holding an invalid key, spends nothing of the CNIC's. Every
    valid CNIC is counted and refused alike, so a refusal says nothing of whether it is
    registered. Its `RateLimit-*` headers stay the caller's own quota, which this refusal did
    not use up; `Retry-After` is the refused look-up window's.
    """
    await _limit(request, response, cnic)


async def _limit(request: Request, response: Response, cnic: Cnic | None) -> None:
    limiter = get_rate_limiter(request)
    key = request.headers.get(API_KEY_HEADER)
    partner = await _partner_for_key(request, key) if key is not None else None
    if partner is not None:
        request.state.partner = partner
        scope, identity, quota = "partner", str(partner.id), partner.quota
    else:
        # A wrong key still counts against the IP, so keys cannot be guessed faster than
        # anonymous calls are allowed.
        scope, identity, quota = "ip", limit_identity(client_ip(request)), None
    looked_up: list[Decision] | None = None
    if cnic is not None and (key is None or partner is not None):
        # An anonymous caller is a sender (SPEC §4: phone, Telegram user, IP) with its hourly
        # look-ups, as a phone is; a partner's quota is its own.
        then = [("cnic", cnic.digits)]
        if partner is None:
            then.insert(0, ("sender", SENDER_IP + identity))
        decision, looked_up = await limiter.hit_then(scope, identity, quota, then)
    else:
        decision = await limiter.hit(scope, identity, quota)
    request.state.rate_limit = decision
    if partner is not None:
        PARTNER_CALLS.labels(partner.name, "allowed" if decision.allowed else "limited").inc()
    if not decision.allowed:
        raise _refuse(decision)
    if key is not None and partner is None:
        raise Problem(
            401,
            f"The {API_KEY_HEADER} header does not hold a valid, active API key.",
            type_=INVALID_API_KEY,
        )
    headers = rate_limit_headers(decision)
    if looked_up and not looked_up[-1].allowed:
        refused_by = then[len(looked_up) - 1][0]
        what, type_ = LOOKUPS_REFUSED[refused_by]
        raise _too_many(what, type_, looked_up[-1].retry_after, headers)
    # FastAPI merges these into the route's response (not into a Response a route returns itself).
    response.headers.update(headers)
