"""An HTTP client that connects only to addresses the SSRF guard allowed, for URLs named by
others (webhook endpoints, alert notifications).

Checking a URL and then letting the HTTP client resolve its host again leaves a window in which
a second DNS answer (a rebinding attack) swaps in a private address. Here the check and the
connection use one resolution: the network backend resolves through ``resolve_allowed`` and
connects to the address it returned, while the request keeps the name, so the ``Host`` header,
TLS SNI and the certificate check are all for the host name. Redirects are never followed (the
client is built with ``follow_redirects=False``), and no proxy from the environment is used.
"""

from __future__ import annotations

from collections.abc import Iterable

import httpcore
import httpx

from agora.core.netguard import UnsafeTarget, resolve_allowed
from agora.core.tls import verified_tls

SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves each host through the SSRF guard and connects to an allowed address."""

    def __init__(self, *, allow_private: bool) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allow_private = allow_private

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - the interface httpcore calls
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """A connection to the first allowed address ``host`` resolves to."""
        shown = f"[{host}]" if ":" in host else host
        addresses = await resolve_allowed(
            f"http://{shown}:{port}/", allow_private=self._allow_private
        )
        return await self._inner.connect_tcp(
            addresses[0],
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - the interface httpcore calls
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Never: a guarded request goes over TCP to a public address."""
        raise UnsafeTarget("Unix sockets are not allowed targets.")

    async def sleep(self, seconds: float) -> None:
        """Sleep on the running event loop."""
        await self._inner.sleep(seconds)


def guarded_client(*, allow_private: bool, timeout: float) -> httpx.AsyncClient:
    """An HTTP client that refuses non-public targets, follows no redirect and gives up after
    ``timeout`` seconds."""
    transport = httpx.AsyncHTTPTransport(verify=verified_tls())
    # httpx takes no network backend; its pool is rebuilt with ours (same TLS defaults).
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=verified_tls(),
        network_backend=_GuardedBackend(allow_private=allow_private),
    )
    return httpx.AsyncClient(
        transport=transport, follow_redirects=False, timeout=httpx.Timeout(timeout), trust_env=False
    )
