"""Refuse outgoing requests to private, loopback and link-local addresses (SSRF guard).

Webhook receivers and crawled sites are named by staff or partners, so a URL could point Agora
at its own database port or a cloud metadata service. The check runs on the addresses the host
name resolves to, not on the name, so a public name that resolves to ``127.0.0.1`` is refused too.
Callers connect to one of the returned addresses (or pin the resolution) so that a second DNS
answer cannot swap in a private address after the check.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from agora.core.errors import ValidationFailed

_ALLOWED_SCHEMES = frozenset({"http", "https"})


class UnsafeTarget(ValidationFailed):
    """A URL that Agora will not send requests to (bad scheme, or a non-public address)."""

    code = "unsafe_target"
    title = "Target not allowed"


def is_public_address(address: str) -> bool:
    """Whether ``address`` is a globally routable unicast address."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url_shape(url: str) -> tuple[str, int]:
    """The host and port of an ``http(s)`` URL, or ``UnsafeTarget`` for any other shape."""
    parts = urlsplit(url)
    if parts.scheme not in _ALLOWED_SCHEMES or not parts.hostname:
        raise UnsafeTarget(f"{url!r} is not an absolute http(s) URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise UnsafeTarget(f"{url!r} has an invalid port") from error
    return parts.hostname, port


async def resolve_allowed(url: str, *, allow_private: bool) -> list[str]:
    """The addresses ``url``'s host resolves to, all of them public unless ``allow_private``."""
    host, port = check_url_shape(url)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise UnsafeTarget(f"{host!r} does not resolve") from error
    addresses = sorted({str(info[4][0]) for info in infos})
    if not allow_private:
        refused = [address for address in addresses if not is_public_address(address)]
        if refused:
            raise UnsafeTarget(f"{host!r} resolves to a non-public address ({refused[0]})")
    return addresses
