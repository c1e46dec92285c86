"""The yardstick: a bare Starlette app answering ``/healthz`` with the same JSON as Agora."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def healthz(_: Request) -> JSONResponse:
    """The same body Agora's liveness endpoint answers."""
    return JSONResponse({"status": "ok"})


def create_app() -> Starlette:
    """The bare app (an ASGI factory, like Agora's)."""
    return Starlette(routes=[Route("/healthz", healthz)])
