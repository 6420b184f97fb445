"""Cross-site request forgery: every console form carries a token the attacker's page cannot know.

Signed-in forms carry the session's own random token (kept in Redis with the session). The login
form, before any session exists, carries an HMAC of a random cookie (a signed double submit), so
a forged login cannot sign a victim in to the attacker's account either. Tokens are compared in
constant time. A request whose `Origin` names another site is refused as well.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request

from api.settings import Settings

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
LOGIN_COOKIE = "rabta_agent_login"


def tokens_match(expected: str, given: str | None) -> bool:
    """Constant-time comparison; an empty or missing token never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def new_login_nonce() -> str:
    return secrets.token_urlsafe(24)


def login_token(settings: Settings, nonce: str) -> str:
    """The token the login form carries for the browser holding `nonce` in its cookie."""
    key = hashlib.sha256(b"rabta-agent-login-csrf:" + settings.secret_key.encode()).digest()
    return hmac.new(key, nonce.encode(), hashlib.sha256).hexdigest()


def same_origin(request: Request, settings: Settings) -> bool:
    """False only when the browser says the request comes from another site."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        # No usable origin: old browsers, non-browser clients, and browsers under a no-referrer
        # policy (Chromium then sends "null" even for same-origin posts): the token decides.
        return True
    host = urlsplit(origin).netloc.lower()
    allowed = {
        (request.headers.get("host") or "").lower(),
        urlsplit(settings.public_base_url).netloc.lower(),
    }
    return host in allowed


async def submitted_token(request: Request) -> str | None:
    """The token sent with a form post (or in the X-CSRF-Token header)."""
    header = request.headers.get(HEADER)
    if header:
        return header
    form = await request.form()
    value = form.get(FIELD)
    return value if isinstance(value, str) else None
