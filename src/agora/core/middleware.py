"""HTTP hardening as pure ASGI middleware: security headers, CORS and a request body limit.

``install_http_middleware`` stacks them in the order that lets every answer, refusals included,
carry the security and CORS headers.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agora.core.errors import PayloadTooLarge, error_response
from agora.core.ratelimit import DefaultBudgetMiddleware
from agora.settings import Settings

JSON_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
HTML_CONTENT_SECURITY_POLICY = "frame-ancestors 'none'"
STRICT_TRANSPORT_SECURITY = "max-age=63072000; includeSubDomains"
CORS_ALLOWED_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"]
CORS_EXPOSED_HEADERS = [
    "Location", "ETag", "Retry-After", "RateLimit", "RateLimit-Policy", "X-Request-ID",
]  # fmt: skip
CORS_ALLOWED_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def install_http_middleware(app: FastAPI, settings: Settings, *, api_prefix: str) -> None:
    """Add the hardening middleware; the last added runs first."""
    app.add_middleware(DefaultBudgetMiddleware, settings=settings, path_prefix=api_prefix)
    app.add_middleware(BodySizeLimitMiddleware, max_body_size=settings.max_body_size)
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=CORS_ALLOWED_METHODS,
            allow_headers=CORS_ALLOWED_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=600,
        )
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.is_production)


class SecurityHeadersMiddleware:
    """Adds ``nosniff``, a CSP, framing and referrer policies, and HSTS in production.

    JSON gets ``default-src 'none'`` (it never needs to load anything); HTML pages such as
    ``/docs`` load their scripts, so they only get ``frame-ancestors 'none'``.
    """

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                is_html = headers.get("content-type", "").startswith("text/html")
                headers.setdefault(
                    "Content-Security-Policy",
                    HTML_CONTENT_SECURITY_POLICY if is_html else JSON_CONTENT_SECURITY_POLICY,
                )
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "no-referrer")
                if self.hsts:
                    headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodySizeLimitMiddleware:
    """Refuses request bodies larger than ``max_body_size`` bytes with a 413 problem.

    A declared ``Content-Length`` over the limit is refused before anything is read; a chunked or
    understated body is counted as it streams in and cut off once it passes the limit, whatever
    the app was about to answer.
    """

    def __init__(self, app: ASGIApp, *, max_body_size: int) -> None:
        self.app = app
        self.max_body_size = max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _declared_length(scope) > self.max_body_size:
            await self._refuse(scope, receive, send)
            return
        received = 0
        exceeded = False
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_size:
                    exceeded = True
                    raise self._error()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                if response_started:
                    return
                response_started = True
                if exceeded:
                    await self._refuse(scope, receive, send)
                    return
            elif exceeded:
                return
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except PayloadTooLarge:
            if not response_started:
                await self._refuse(scope, receive, send)

    def _error(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"The request body is larger than {self.max_body_size} bytes.",
            max_body_size=self.max_body_size,
        )

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(self._error(), scope["path"])
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


def _declared_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0
