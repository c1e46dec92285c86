"""What the server does with connections that send nothing, on a real ``agora api``: a client
that stops halfway through its headers, or keeps a connection open without a next request, is
disconnected after ``AGORA_HTTP_KEEPALIVE_TIMEOUT`` and holds nothing after that."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

from tests.support import ApiProcess

# Far beyond the one-second timeout under test: only a server that never closes reaches it.
NEVER = 60.0


def _closed_by_server(server: ApiProcess, first_bytes: bytes) -> bytes:
    """Send ``first_bytes``, then nothing; what arrives before the server closes."""
    with socket.create_connection(("127.0.0.1", server.port)) as connection:
        connection.settimeout(NEVER)
        connection.sendall(first_bytes)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
        return received


async def test_idle_and_half_sent_connections_are_closed(
    api_server: Callable[..., ApiProcess],
) -> None:
    server = await asyncio.to_thread(api_server, AGORA_HTTP_KEEPALIVE_TIMEOUT="1")

    after_a_request = await asyncio.to_thread(
        _closed_by_server, server, b"GET /healthz HTTP/1.1\r\nHost: agora\r\n\r\n"
    )
    half_sent = await asyncio.to_thread(
        _closed_by_server, server, b"GET /healthz HTTP/1.1\r\nHost: ag"
    )

    # The keep-alive connection answered its request, then was closed while idle.
    assert after_a_request.startswith(b"HTTP/1.1 200")
    assert after_a_request.count(b"HTTP/1.1") == 1
    # Headers that never end get no answer and no request handled.
    assert b"HTTP/1.1 200" not in half_sent
