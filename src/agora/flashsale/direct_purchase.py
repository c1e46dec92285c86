"""The flash-sale purchase answered before routing, and what it shares with its route.

A purchase is the hottest write of a sale: thousands of buyers in the same second, each request
one Redis call. Through FastAPI, most of its CPU went to the framework around that call: the
middleware below the app's own, the router, the dependency graph (token, body, idempotency
key, the app-wide NUL check) and the request handler. ``DirectPurchaseMiddleware`` (pure ASGI,
as the edge cache is for cached reads, ``core/edge.py``) answers the well-formed purchase
itself and hands everything else, untouched, to the route in ``flashsale/api.py``:

- well-formed means ``POST`` on the purchase path with a canonical sale id and no query string,
  one ``Content-Type: application/json``, a declared length of at most ``MAX_DIRECT_BODY``
  bytes, a body ``PurchaseRequest`` accepts with no escaped NUL in it, one ``Authorization:
  Bearer`` token that verifies, and at most one ``Idempotency-Key`` of the allowed shape;
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

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agora.core.dependencies import AppServices
from agora.core.errors import Unauthorized
from agora.core.idempotency import IDEMPOTENCY_KEY_PATTERN, REPLAYED_HEADER, IdempotentRequest
from agora.core.idempotency import fingerprint as request_fingerprint
from agora.core.observability import RouteLabel
from agora.core.ratelimit import (
    BudgetCall,
    client_identity,
    client_ip,
    default_budget,
    rate_limit,
)
from agora.core.security import Principal, decode_access_token
from agora.core.serialization import dumps
from agora.core.validation import ESCAPED_NUL
from agora.flashsale import service
from agora.flashsale.schemas import PurchaseRequest

MAX_DIRECT_BODY = 4096
_UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_HEADERS = frozenset({b"authorization", b"content-type", b"content-length", b"idempotency-key"})
_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


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


@dataclass(frozen=True, slots=True)
class _Purchase:
    """What a well-formed purchase request carries, read from its headers."""

    token: str
    idempotency_key: str | None


class DirectPurchaseMiddleware:
    """Answers well-formed flash-sale purchases at ``path`` (the route's template, with its
    ``{sale_id}``) without the router; every other request passes through untouched."""

    def __init__(self, app: ASGIApp, *, path: str) -> None:
        self.app = app
        self.route = RouteLabel(path)
        self.path = re.compile(re.escape(path).replace(re.escape("{sale_id}"), f"({_UUID})"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = (
            self.path.fullmatch(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST"
            else None
        )
        purchase = _well_formed(scope) if match else None
        if match is None or purchase is None:
            await self.app(scope, receive, send)
            return
        messages, body = await _read_body(receive)
        decided = _decide(scope, body, purchase) if body is not None else None
        if body is None or decided is None:
            await self.app(scope, _replaying(messages, receive), send)
            return
        principal, request = decided
        scope["route"] = self.route
        scope.setdefault("state", {})["principal"] = principal
        services: AppServices = scope["app"].state.services
        sale_id = uuid.UUID(match[1])
        idempotency = IdempotentRequest(
            purchase.idempotency_key,
            request_fingerprint("POST", scope["path"], body) if purchase.idempotency_key else "",
        )
        connection = HTTPConnection(scope)
        try:
            response = await accept(services, connection, sale_id, principal, request, idempotency)
        except Exception as exc:
            response = await _handled(scope, receive, exc)
        await response(scope, receive, send)


def _well_formed(scope: Scope) -> _Purchase | None:
    """The token and key of a request whose headers qualify, else None (passed on)."""
    if scope["query_string"] or scope.get("root_path"):
        return None
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in _HEADERS:
            if name in found:
                return None
            found[name] = value
        elif name == b"transfer-encoding":
            return None
    content_type = found.get(b"content-type", b"").partition(b";")[0].strip().lower()
    length = found.get(b"content-length", b"")
    if content_type != b"application/json" or not length.isdigit():
        return None
    if not 0 < int(length) <= MAX_DIRECT_BODY:
        return None
    scheme, _, token = found.get(b"authorization", b"").decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    key = found.get(b"idempotency-key")
    if key is None:
        return _Purchase(token, None)
    idempotency_key = key.decode("latin-1")
    return _Purchase(token, idempotency_key) if _KEY.fullmatch(idempotency_key) else None


async def _read_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """The messages received and the whole body; None for the body when the client left."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return messages, b"".join(chunks)


def _decide(
    scope: Scope, body: bytes, purchase: _Purchase
) -> tuple[Principal, PurchaseRequest] | None:
    """The caller and the validated body, or None when the route must answer (a bad token, a
    body the model refuses or that holds an escaped NUL)."""
    if ESCAPED_NUL in body:
        return None
    try:
        request = PurchaseRequest.model_validate_json(body)
        principal = decode_access_token(scope["app"].state.services.settings, purchase.token)
    except (ValidationError, Unauthorized):
        return None
    return principal, request


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` with the messages already read given back first, in order."""
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


async def _handled(scope: Scope, receive: Receive, exc: Exception) -> Response:
    """The answer the app's own handler gives ``exc`` (as on the route); re-raised when only the
    server-error handler takes it."""
    handlers: Mapping[Any, Any] = scope["app"].exception_handlers
    for kind in type(exc).__mro__:
        if kind is Exception:
            break
        if kind in handlers:
            response: Response = await handlers[kind](Request(scope, receive), exc)
            return response
    raise exc
