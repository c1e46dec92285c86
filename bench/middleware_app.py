"""Agora's app without one piece of its HTTP middleware, for ``bench/middleware.py``.

``AGORA_BENCH_WITHOUT`` names the middleware class to leave out; the piece is dropped from the
app's middleware list before the first request builds the stack, so everything else is the app
users run.
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from agora.app import create_app as create_agora_app


def create_app() -> FastAPI:
    """The app, less the middleware named by ``AGORA_BENCH_WITHOUT`` (none when unset)."""
    app = create_agora_app()
    left_out = os.environ.get("AGORA_BENCH_WITHOUT", "")
    app.user_middleware = [
        middleware
        for middleware in app.user_middleware
        if getattr(middleware.cls, "__name__", "") != left_out
    ]
    return app
