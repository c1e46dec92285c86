"""The floor of the flash-sale purchase benchmark: bare JSON. A bare Starlette app that takes
the same request (path, bearer token, JSON body) and answers what Agora answers to an accepted
purchase (202, ``{"ticket_id": ...}``, ``Location``), reading the body as JSON and writing the
answer as JSON; no token check, no Redis, no middleware.
"""

from __future__ import annotations

import uuid

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def healthz(_: Request) -> JSONResponse:
    """Liveness, for the harness."""
    return JSONResponse({"status": "ok"})


async def purchase(request: Request) -> JSONResponse:
    """Read the purchase, answer a new ticket."""
    await request.json()
    ticket_id = uuid.uuid4()
    location = f"{request.url.path.removesuffix('/purchase')}/tickets/{ticket_id}"
    return JSONResponse({"ticket_id": str(ticket_id)}, 202, headers={"Location": location})


def create_app() -> Starlette:
    """The bare app (an ASGI factory, like Agora's)."""
    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/api/v1/flash-sales/{sale_id}/purchase", purchase, methods=["POST"]),
        ]
    )
