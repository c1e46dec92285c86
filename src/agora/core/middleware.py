"""HTTP hardening as pure ASGI middleware: security headers, CORS, a request body limit, and
the client's address behind trusted proxies.

``install_http_middleware`` stacks them in the order that lets every answer, refusals included,
carry the security and CORS headers.

``X-Forwarded-For`` is believed only from the peers named by ``AGORA_TRUSTED_PROXIES`` (none by
default): anyone else could name a new address on every request and escape every per-address
budget. The server reads no proxy header (``agora api`` serves with granian, which has no such
handling; uvicorn's ``FORWARDED_ALLOW_IPS`` has no effect): this is the one place that decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from agora.core.batched_budget import BatchedBudget
from agora.core.edge import EdgeCache, EdgeCacheMiddleware
from agora.core.errors import PayloadTooLarge, error_response
from agora.core.ratelimit import DefaultBudgetMiddleware, default_budget
from agora.settings import Settings

JSON_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
HTML_CONTENT_SECURITY_POLICY = "frame-ancestors 'none'"
STRICT_TRANSPORT_SECURITY = "max-age=63072000; includeSubDomains"
CORS_ALLOWED_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"]
CORS_EXPOSED_HEADERS = [
    "Location", "ETag", "Retry-After", "RateLimit", "RateLimit-Policy", "X-Request-ID",
]  # fmt: skip
CORS_ALLOWED_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def install_http_middleware(
    app: FastAPI,
    settings: Settings,
    *,
    api_prefix: str,
    unmetered_prefixes: tuple[str, ...] = (),
    self_metered_paths: tuple[str, ...] = (),
    edge: EdgeCache | None = None,
    direct_handlers: Sequence[Middleware] = (),
    metered_handlers: Sequence[Middleware] = (),
) -> None:
    """Add the hardening middleware; the last added runs first. Paths under
    ``unmetered_prefixes`` skip the default budget (callers authenticated another way); routes
    whose template is in ``self_metered_paths`` spend it themselves with their own budgets.
    An ``edge`` cache answers its hits in front of the default budget, spending it in batches
    (``core/edge.py``), behind every layer that adds headers. ``direct_handlers`` answer their
    own requests in front of the edge cache and the default budget, behind the same layers
    (a self-metered route's requests answered before routing); ``metered_handlers`` answer
    theirs behind the default budget (a metered route's requests answered before routing)."""
    for handler in metered_handlers:
        app.add_middleware(handler.cls, *handler.args, **handler.kwargs)
    app.add_middleware(
        DefaultBudgetMiddleware,
        settings=settings,
        path_prefix=api_prefix,
        unmetered_prefixes=unmetered_prefixes,
        self_metered_paths=self_metered_paths,
    )
    if edge is not None:
        budget = BatchedBudget(default_budget(settings))
        app.add_middleware(EdgeCacheMiddleware, edge=edge, budget=budget, metered_prefix=api_prefix)
    for handler in direct_handlers:
        app.add_middleware(handler.cls, *handler.args, **handler.kwargs)
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


def install_proxy_headers(app: FastAPI, settings: Settings) -> None:
    """Take the client's address and scheme from ``X-Forwarded-For``/``-Proto`` when, and only
    when, the peer is a trusted proxy; add it last, so that every other layer sees the result."""
    if settings.trusted_proxy_list:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxy_list)


class SecurityHeadersMiddleware:
    """Adds ``nosniff``, a CSP, framing and referrer policies, and HSTS in production.

    JSON gets ``default-src 'none'`` (it never needs to load anything); HTML pages such as
    ``/docs`` load their scripts, so they only get ``frame-ancestors 'none'``. A header the
    response already set is kept. The headers are encoded once, not per response.
    """

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        common = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
        ]
        if hsts:
            common.append((b"strict-transport-security", STRICT_TRANSPORT_SECURITY.encode()))
        policy = b"content-security-policy"
        self.json_headers = [(policy, JSON_CONTENT_SECURITY_POLICY.encode()), *common]
        self.html_headers = [(policy, HTML_CONTENT_SECURITY_POLICY.encode()), *common]
        self.names = frozenset(name for name, _ in self.json_headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = self._with_security_headers(message.get("headers", []))
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _with_security_headers(
        self, headers: Iterable[tuple[bytes, bytes]]
    ) -> list[tuple[bytes, bytes]]:
        merged = list(headers)
        extra = self.json_headers
        present: set[bytes] = set()
        for name, value in merged:
            lowered = name.lower()
            if lowered == b"content-type":
                if value.startswith(b"text/html"):
                    extra = self.html_headers
            elif lowered in self.names:
                present.add(lowered)
        merged.extend(header for header in extra if header[0] not in present)
        return merged


class BodySizeLimitMiddleware:
    """Refuses request bodies larger than ``max_body_size`` bytes with a 413 problem.

    A declared ``Content-Length`` over the limit is refused before anything is read; within the
    limit nothing more is done, since the server reads no more than the declared length. A
    chunked body is counted as it streams in and cut off once it passes the limit, whatever the
    app was about to answer.
    """

    def __init__(self, app: ASGIApp, *, max_body_size: int) -> None:
        self.app = app
        self.max_body_size = max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None:
            if declared > self.max_body_size:
                await self._refuse(scope, receive, send)
            else:
                await self.app(scope, receive, send)
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


def _declared_length(scope: Scope) -> int | None:
    """The declared ``Content-Length``; None when the body is chunked (or its length is not a
    number), so that it is counted as it streams in. A request with neither header has no body
    (RFC 9112, section 6.3): zero, and nothing to count, as on most GETs."""
    length = 0
    for name, value in scope["headers"]:
        if name == b"transfer-encoding":
            return None
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return None
    return length
