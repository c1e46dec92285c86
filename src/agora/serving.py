"""How the API is served: granian (uvloop), one place for its settings.

``agora api`` serves the app with it, and the benchmarks serve their yardstick apps with it, so
that a ratio compares apps on one server, not two servers. ``docs/performance.md`` has the
measurement that chose granian over uvicorn (faster on every hot path, no feature lost).

granian reads no ``X-Forwarded-For`` itself: the app believes it from ``AGORA_TRUSTED_PROXIES``
only (``core/middleware.py``). Its HTTP/1 header read timeout also closes a keep-alive connection
left idle that long: ``AGORA_HTTP_KEEPALIVE_TIMEOUT``, longer than the proxy's upstream
keepalive, so that the proxy, not the API, closes idle connections and never sends a request on
a connection the API is closing.
"""

from __future__ import annotations

from granian.constants import Interfaces, Loops
from granian.http import HTTP1Settings
from granian.server import Server

from agora.settings import get_settings


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
    ).serve()
