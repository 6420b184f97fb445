"""ASGI middleware: a body size cap that answers 413 before a byte too many is read."""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import BODY_TOO_LARGE, JSON_REQUIRED, retry_after_member, title_of


class BodySizeLimit:
    """Refuse request bodies over `max_bytes` with a 413 problem document."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.max_bytes + 1
                if declared > self.max_bytes:
                    await self._refuse(send)
                    return
        received = 0
        response_started = refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Answered here, as the body is read: an app that catches the failed read
                    # (FastAPI turns any error reading a body it parses into a 400) cannot
                    # answer anything else.
                    if not response_started and not refused:
                        refused = True
                        await self._refuse(send)
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if refused:
                return  # the 413 is sent; what the app answers to the failed read is dropped
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            pass  # refused when it was read, or the app had already started its answer

    async def _refuse(self, send: Send) -> None:
        await send_problem(
            send,
            413,
            f"Request bodies are limited to {self.max_bytes} bytes.",
            type_=BODY_TOO_LARGE,
            max_bytes=self.max_bytes,
        )


class _TooLarge(HTTPException):
    """A body read past the limit. An HTTPException, which FastAPI lets through from a body
    read instead of calling it a parsing error, so the app's own layers (the request metrics)
    see the 413 the client gets."""

    def __init__(self) -> None:
        super().__init__(413)


class JsonBodiesOnly:
    """`/v1` takes JSON: a body of any other type, or of none declared, is a 415 problem, not a
    parsing error."""

    def __init__(self, app: ASGIApp, *, prefix: str = "/v1/") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in ("POST", "PUT", "PATCH")
            and scope["path"].startswith(self.prefix)
        ):
            content_type = b""
            for name, value in scope.get("headers", ()):
                if name == b"content-type":
                    content_type = value.split(b";", 1)[0].strip().lower()
            # No Content-Type at all is not JSON either (RFC 9110 §8.3: the recipient may take
            # it as application/octet-stream); FastAPI would try it as JSON and answer 422.
            if content_type != b"application/json":
                await send_problem(send, 415, "Send JSON (application/json).", type_=JSON_REQUIRED)
                return
        await self.app(scope, receive, send)


async def send_response(
    send: Send,
    status: int,
    content_type: bytes,
    body: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """A whole response written by an ASGI middleware that answers before the app does."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_problem(
    send: Send,
    status: int,
    detail: str,
    *,
    type_: str,
    headers: list[tuple[bytes, bytes]] | None = None,
    **extensions: Any,
) -> None:
    """A problem document (RFC 9457) of one of `api.problems`' types, written by an ASGI
    middleware; `retry_after` in the body when `headers` carry `Retry-After`."""
    problem: dict[str, Any] = {
        "type": type_,
        "title": title_of(type_, status),
        "status": status,
        "detail": detail,
    }
    problem.update(retry_after_member({k.decode(): v.decode() for k, v in headers or []}))
    problem.update(extensions)
    body = json.dumps(problem).encode()
    await send_response(send, status, b"application/problem+json", body, headers)


#: Private answers must never sit in a shared cache.
_PRIVATE_PREFIXES = ("/v1/me", "/v1/otp", "/agent", "/webhooks")


class SecurityHeaders:
    """Headers every response carries: no sniffing, no framing, no caching of private answers,
    and HSTS in production (where TLS is in front)."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        private = scope["path"].startswith(_PRIVATE_PREFIXES)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                ]
                if private:
                    extra.append((b"cache-control", b"no-store"))
                if self.hsts:
                    extra.append(
                        (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
                    )
                headers += [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
