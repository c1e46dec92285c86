"""The TLS context of every outbound HTTPS client, built once per process.

Building one reads and parses the whole CA bundle: 20-30 ms of CPU, on the event loop, which a
client built per call (a payment opening, a webhook delivery) used to pay each time, stalling
every other request of the process meanwhile. The context holds only the verification settings
(httpx's own: certifi's roots, hostnames checked), so one serves every client and every loop.
httpcore sets its ALPN protocols at each connection; every client of ours speaks HTTP/1.1, so
they all set the same.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def verified_tls() -> ssl.SSLContext:
    """httpx's default certificate verification, shared."""
    return httpx.create_ssl_context()
