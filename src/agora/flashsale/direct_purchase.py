"""The flash-sale purchase answered before routing, and what it shares with its route.

A purchase is the hottest write of a sale: thousands of buyers in the same second, each request
one Redis call. Through FastAPI, most of its CPU went to the framework around that call: the
middleware below the app's own, the router, the dependency graph (token, body, idempotency
key, the app-wide NUL check) and the request handler. ``direct_purchase`` (a
``core/direct.DirectJsonMiddleware``) answers the well-formed purchase itself and hands
everything else, untouched, to the route in ``flashsale/api.py``:

- well-formed means ``POST`` on the purchase path with a canonical sale id and no query string,
  one ``Content-Type: application/json``, a declared length of at most ``MAX_DIRECT_BODY``
  bytes, a body ``PurchaseRequest`` accepts with no escaped NUL in it, one ``Authorization:
  Bearer`` token that verifies, and at most one ``Idempotency-Key`` of the allowed shape
  (``core/direct.py``);
- anything else (a missing or bad token, a body that fails validation, another content type, a
  chunked body) goes to the route with the body it was sent, so its answers (401, 422 as RFC
  9457 problems) come from the one place that defines them, and OpenAPI documents the route;
- the answer is built by ``accept``, the function the route calls too: same budgets, same
  service call, same 202 bytes and headers; a refusal raised on the way is rendered by the
  app's own exception handler for it (``core/errors.py``), and what has none reaches the
  server-error handler as from the route.

The layers above it still run (request id, access log and metrics, security and CORS headers,
the body limit), and it puts on the scope what they read: the route's template and the
principal. The default budget is spent by the purchase's own Redis call, as on the route.
"""

from __future__ import annotations

import uuid

from starlette.middleware import Middleware
from starlette.requests import HTTPConnection
from starlette.responses import Response

from agora.core.dependencies import AppServices
from agora.core.direct import DirectCall, DirectJsonMiddleware
from agora.core.idempotency import REPLAYED_HEADER, IdempotentRequest
from agora.core.ratelimit import (
    BudgetCall,
    client_identity,
    client_ip,
    default_budget,
    rate_limit,
)
from agora.core.security import Principal
from agora.core.serialization import dumps
from agora.flashsale import service
from agora.flashsale.schemas import PurchaseRequest


def purchase_budgets(
    services: AppServices, connection: HTTPConnection, principal: Principal
) -> BudgetCall:
    """The default budget (skipped by the middleware on the purchase path) and the purchase's
    own ones, per client address and per buyer, with the check that the token was not revoked:
    spent by the purchase's own Redis call (429 when one is spent, 401 when revoked)."""
    settings = services.settings
    return BudgetCall.of(
        [
            (default_budget(settings), client_identity(connection, principal)),
            (rate_limit("flash-sale-ip", settings.rate_limit_flash_sale_ip), client_ip(connection)),
            (
                rate_limit("flash-sale-buyer", settings.rate_limit_flash_sale_buyer),
                str(principal.user_id),
            ),
        ],
        principal=principal,
    )


async def accept(
    services: AppServices,
    connection: HTTPConnection,
    sale_id: uuid.UUID,
    principal: Principal,
    body: PurchaseRequest,
    idempotency: IdempotentRequest,
) -> Response:
    """The purchase of a validated request: 202 with the ticket and its ``Location``, or the
    service's refusal raised."""
    address = body.shipping_address
    ticket = await service.purchase(
        services.redis,
        sale_id,
        principal.user_id,
        body.quantity,
        shipping_address=address.model_dump(exclude_none=True) if address else None,
        request_key=idempotency.key,
        fingerprint=idempotency.fingerprint,
        budgets=purchase_budgets(services, connection, principal),
    )
    # The ticket's path next to this one: ``url_for`` would walk every route of the app.
    sale_path = connection.scope["path"].removesuffix("/purchase")
    headers = {"Location": f"{sale_path}/tickets/{ticket.ticket_id}"}
    if ticket.is_replay:
        headers[REPLAYED_HEADER] = "true"
    # The body is ``PurchaseAccepted``, encoded directly: a UUID needs no model to validate it.
    return Response(
        dumps({"ticket_id": ticket.ticket_id}), 202, headers, media_type="application/json"
    )


async def _direct_accept(call: DirectCall) -> Response:
    return await accept(
        call.services,
        call.connection,
        call.path_params["sale_id"],
        call.principal,
        call.body,
        call.idempotency,
    )


def direct_purchase(path: str) -> Middleware:
    """The middleware answering well-formed purchases at ``path`` (the route's template, with
    its ``{sale_id}``) without the router."""
    return Middleware(DirectJsonMiddleware, path=path, model=PurchaseRequest, answer=_direct_accept)
