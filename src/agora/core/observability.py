"""Logs, request ids and Prometheus metrics.

Logs are structlog: JSON lines in production, readable in a terminal. Every line written while a
request is handled carries its ``request_id``; each HTTP request and each WebSocket session gets
one access line (the server logs none). Every rendered line has its ``token=`` values redacted:
a client that still puts a token in a URL must not get it written to disk.

Metrics work with several worker processes: when ``PROMETHEUS_MULTIPROC_DIR`` is set, each
process writes its samples there and ``/metrics`` aggregates them.
"""

from __future__ import annotations

import logging
import os
import random
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = b"x-request-id"
# ``token=``, ``access_token=``, ``refresh_token=``… up to the end of the value.
TOKEN_PARAMETER = re.compile(r"(?i)(token=)[^&\s\"'\\]+")
REDACTED = "[redacted]"
_QUIET_ROUTES = frozenset({"/healthz", "/metrics"})
_WEBSOCKET_REFUSALS = frozenset({"websocket.close", "websocket.http.response.start"})

HTTP_REQUESTS = Counter(
    "agora_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "agora_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


def configure_logging(level: str = "INFO", *, json: bool = False) -> None:
    """Route stdlib and structlog output through one structlog pipeline."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,  # drop disabled levels before any work
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *([structlog.processors.format_exc_info] if json else []),
            renderer,
            _redact_tokens,
        ],
    )
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).disabled = True
    for name in ("uvicorn", "uvicorn.error", "celery"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def redact_tokens(text: str) -> str:
    """``text`` with the value of every ``token=`` parameter replaced by ``[redacted]``."""
    return TOKEN_PARAMETER.sub(rf"\1{REDACTED}", text)


def _redact_tokens(_: Any, __: str, rendered: Any) -> Any:
    """The last step of every log line: redact what the renderer wrote."""
    return redact_tokens(rendered) if isinstance(rendered, str) else rendered


class RequestRecord(NamedTuple):
    """What a request was, for a sink that keeps requests as data (the log platform); a named
    tuple, since one is built on every request."""

    at: float
    method: str
    path: str
    route: str
    status: int
    duration_ms: float
    response_bytes: int
    client: str | None
    user_id: str | None
    request_id: str


RequestSink = Callable[[RequestRecord], None]
"""Takes a finished request's record; it must return at once (it runs on the request path)."""


class RequestContextMiddleware:
    """Request id, access log and HTTP metrics, as pure ASGI (no per-request task overhead).

    The labelled metric children are looked up once per (method, route, status), not per
    request, and the access line is only built when its level is enabled. An optional
    ``request_sink`` receives each request's record once it is answered.
    """

    def __init__(self, app: ASGIApp, request_sink: RequestSink | None = None) -> None:
        self.app = app
        self.request_sink = request_sink
        self.log = structlog.get_logger("agora.access")
        self.access_logger = logging.getLogger("agora.access")
        self.counters: dict[tuple[str, str, int], Any] = {}
        self.histograms: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket_session(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _bind_request_id(scope)
        started = time.perf_counter()
        status = 500
        sent = 0
        request_id_header = (REQUEST_ID_HEADER, request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), request_id_header]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(scope)
            self._record(scope, route, status, elapsed)
            if self.request_sink is not None:
                self.request_sink(_request_record(scope, route, status, elapsed, sent, request_id))

    async def _websocket_session(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One access line per WebSocket session, whatever server runs the app: its path and
        query (tokens redacted when the line is rendered), whether the handshake was accepted,
        and how long the session lasted."""
        _bind_request_id(scope)
        started = time.perf_counter()
        outcome = "dropped"  # the app returned without answering the handshake

        async def observed_send(message: Message) -> None:
            nonlocal outcome
            if message["type"] == "websocket.accept":
                outcome = "accepted"
            elif outcome != "accepted" and message["type"] in _WEBSOCKET_REFUSALS:
                outcome = "rejected"
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            if self.access_logger.isEnabledFor(logging.INFO):
                query = scope.get("query_string", b"").decode("latin-1")
                self.log.info(
                    "websocket",
                    path=scope["path"] + ("?" + query if query else ""),
                    outcome=outcome,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                )

    def _record(self, scope: Scope, route: str, status: int, elapsed: float) -> None:
        method = scope["method"]
        counter = self.counters.get((method, route, status))
        if counter is None:
            counter = HTTP_REQUESTS.labels(method, route, str(status))
            self.counters[(method, route, status)] = counter
        counter.inc()
        histogram = self.histograms.get((method, route))
        if histogram is None:
            histogram = HTTP_LATENCY.labels(method, route)
            self.histograms[(method, route)] = histogram
        histogram.observe(elapsed)
        if route not in _QUIET_ROUTES and self.access_logger.isEnabledFor(logging.INFO):
            self.log.info(
                "request",
                method=method,
                path=scope["path"],
                status=status,
                duration_ms=round(elapsed * 1000, 2),
            )


def _request_record(
    scope: Scope, route: str, status: int, elapsed: float, sent: int, request_id: str
) -> RequestRecord:
    client = scope.get("client")
    principal = scope.get("state", {}).get("principal")
    user_id = getattr(principal, "user_id", None)
    return RequestRecord(
        at=time.time() - elapsed,
        method=scope["method"],
        path=scope["path"],
        route=route,
        status=status,
        duration_ms=elapsed * 1000,
        response_bytes=sent,
        client=client[0] if client else None,
        user_id=str(user_id) if user_id is not None else None,
        request_id=request_id,
    )


def _bind_request_id(scope: Scope) -> str:
    """The request's id (the client's, when it sent a usable one), bound to every log line
    written while the request is handled."""
    request_id = _incoming_request_id(scope) or new_request_id()
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    return request_id


def new_request_id() -> str:
    """128 random bits in hex, the shape of a UUID's hex without building one (a fifth of the
    cost). A request id correlates log lines: it must not repeat, it need not be unguessable;
    ``random`` is reseeded in every forked worker, so processes do not share a sequence."""
    return f"{random.getrandbits(128):032x}"


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            candidate: str = bytes(value).decode("latin-1")[:64]
            if candidate.replace("-", "").isalnum():
                return candidate
    return None


@dataclass(frozen=True, slots=True)
class RouteLabel:
    """What the access log and metrics read from ``scope["route"]``, for a request answered
    before routing (an edge-cache hit, a direct purchase)."""

    path: str


def route_template(scope: Scope) -> str:
    """The matched route's full path template (router prefixes included), so metrics and
    request logs are not labelled by ids. FastAPI keeps the full template in its effective
    route context; the route's own path (without its router's prefix) is the fallback."""
    context = scope.get("fastapi", {}).get("effective_route_context")
    path: object = getattr(context, "path_format", None) or getattr(
        scope.get("route"), "path", None
    )
    return path if isinstance(path, str) else "unmatched"


def _registry() -> CollectorRegistry:
    """This process's registry, or one adding up every process in multiprocess mode."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def metrics_response(_: Request) -> Response:
    """The Prometheus exposition of this process, or of all processes in multiprocess mode."""
    return Response(generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST)


def serve_metrics(port: int) -> None:
    """Serve ``/metrics`` from a background thread (worker processes, which have no HTTP app)."""
    start_http_server(port, registry=_registry())
