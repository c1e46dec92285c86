"""The receiver's side of ``Agora-Signature``, as docs/webhooks.md gives it to partners.

Written from the published scheme, not with Agora's own code: a test that verified with our
signer's twin would prove nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import time


def verify(header: str, body: bytes, secret: str, tolerance: int = 300) -> bool:
    """Whether one ``v1`` of the header is the HMAC-SHA256 of ``t.body`` under ``secret``."""
    items = [item.split("=", 1) for item in header.split(",")]
    timestamp = next(value for key, value in items if key == "t")
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return any(
        hmac.compare_digest(expected.hexdigest(), value) for key, value in items if key == "v1"
    )
