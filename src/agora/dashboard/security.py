"""The page's Content-Security-Policy: scripts only from this origin (no inline script, no
``eval``), connections only back to this origin (HTTP and WebSocket), nothing framed.

Styles allow ``'unsafe-inline'`` for one reason: the chart library sizes and colours its SVG
through ``style`` attributes. Scripts, which are what an injection would use, stay strict.
"""

from __future__ import annotations

PAGE_CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
