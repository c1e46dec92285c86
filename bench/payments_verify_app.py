"""The floor of the payment-callback benchmark: a bare Starlette app that does only what no
callback can skip, verifying the provider's signature on the raw body (and, for WeChat Pay,
decrypting the resource) with Agora's own provider classes, then answering what the provider
expects. No database, no inbox, no middleware.

Settings come from the environment (``AGORA_*``), as for Agora's API.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agora.payments.providers import enabled_providers
from agora.settings import get_settings


async def healthz(_: Request) -> JSONResponse:
    """Liveness, for the harness."""
    return JSONResponse({"status": "ok"})


async def verify(request: Request) -> Response:
    """Verify the callback and acknowledge it as the provider expects."""
    provider = enabled_providers(get_settings())[request.path_params["provider"]]
    provider.parse_callback(await request.body(), request.headers)
    answer = provider.acknowledgement()
    return Response(answer.body, answer.status_code, media_type=answer.media_type)


def create_app() -> Starlette:
    """The bare app (an ASGI factory, like Agora's)."""
    enabled_providers(get_settings())  # keys parsed once, before the first request
    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/api/v1/payments/webhooks/{provider}", verify, methods=["POST"]),
        ]
    )
