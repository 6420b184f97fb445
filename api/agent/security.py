"""Response headers for everything under /agent: a strict CSP (no inline script, no framing),
no caching of private pages, no sniffing, no referrer leaving the console."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: under no-referrer Chromium sends `Origin: null` on the
    # console's own posts, and the origin check is worth keeping. Console URLs carry no CNIC.
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}
#: Pages show personal data: never kept by the browser or any cache on the way.
PRIVATE_CACHE = "no-store"
#: Static assets carry a content hash in their URL, so they may be kept.
STATIC_CACHE = "public, max-age=86400"


class ConsoleHeaders:
    """Adds the console's security headers to every response under `prefix`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        prefix: str = "/agent",
        static_prefix: str = "/agent/static/",
        hsts: bool = False,
    ) -> None:
        self.app = app
        self.prefix = prefix
        self.static_prefix = static_prefix
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == self.prefix or path.startswith(self.prefix + "/")):
            await self.app(scope, receive, send)
            return
        static = path.startswith(self.static_prefix)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers[name] = value
                if static and message["status"] == 200:
                    headers["Cache-Control"] = STATIC_CACHE
                else:
                    headers["Cache-Control"] = PRIVATE_CACHE
                    headers["Pragma"] = "no-cache"
                if self.hsts:
                    headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
            await send(message)

        await self.app(scope, receive, with_headers)
