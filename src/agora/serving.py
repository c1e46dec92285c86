"""How the API is served: granian (uvloop), one place for its settings.

``agora api`` serves the app with it, and the benchmarks serve their yardstick apps with it, so
that a ratio compares apps on one server, not two servers. ``docs/performance.md`` has the
measurement that chose granian over uvicorn (faster on every hot path, no feature lost).

granian reads no ``X-Forwarded-For`` itself: the app believes it from ``AGORA_TRUSTED_PROXIES``
only (``core/middleware.py``). Its HTTP/1 header read timeout also closes a keep-alive connection
left idle that long: ``AGORA_HTTP_KEEPALIVE_TIMEOUT``, longer than the proxy's upstream
keepalive, so that the proxy, not the API, closes idle connections and never sends a request on
a connection the API is closing.

A worker told to stop while its app is still starting up misses the signal and would serve on,
holding the stop forever (granian hears the signal during the lifespan startup but its server
starts after it). ``WORKER_STOP_TIMEOUT`` bounds every worker's graceful stop: after it the worker
is killed, well inside the 30 s grace period a Kubernetes pod gets.
"""

from __future__ import annotations

from granian.constants import Interfaces, Loops
from granian.http import HTTP1Settings
from granian.server import Server

from agora.settings import get_settings

WORKER_STOP_TIMEOUT = 20
"""Seconds a worker may take to stop gracefully (requests in flight, lifespan shutdown)."""


def serve(factory: str, *, host: str, port: int, workers: int) -> None:
    """Serve the ASGI app that ``factory`` (``module:function``) builds until stopped."""
    idle_ms = get_settings().http_keepalive_timeout * 1000
    Server(
        factory,
        factory=True,
        address=host,
        port=port,
        workers=workers,
        interface=Interfaces.ASGI,
        loop=Loops.uvloop,
        http1_settings=HTTP1Settings(header_read_timeout=idle_ms),
        log_access=False,
        respawn_failed_workers=True,
        workers_kill_timeout=WORKER_STOP_TIMEOUT,
    ).serve()
