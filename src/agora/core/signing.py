"""Signatures on the HTTP notifications Agora sends (alert and merchant webhooks).

One scheme for every outgoing notification, the one Stripe uses for its own webhooks: the header
``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``. The timestamp is signed with the body,
so a receiver that checks freshness also refuses a replayed delivery. While a secret is being
rotated, a delivery carries one ``v1`` per valid secret and a receiver accepts any of them.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable

DEFAULT_TOLERANCE_S = 300


def signature_header(secrets: Iterable[str], body: bytes, *, timestamp: int | None = None) -> str:
    """The signature header value for ``body``: one ``v1`` per secret, all over one timestamp."""
    signed_at = int(time.time()) if timestamp is None else timestamp
    parts = [f"t={signed_at}"]
    parts.extend(f"v1={_digest(secret, signed_at, body)}" for secret in secrets)
    return ",".join(parts)


def is_valid_signature(
    header: str,
    secret: str,
    body: bytes,
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` and is no older than ``tolerance_s``."""
    timestamp, signatures = _parse(header)
    if timestamp is None or not signatures:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        return False
    expected = _digest(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in signatures)


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _parse(header: str) -> tuple[int | None, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value)
    return timestamp, signatures
