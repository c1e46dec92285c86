"""The checkout answered before routing, and what it shares with its route.

Placing an order is the heaviest request of a checkout, and it came with the most framework
around it: the router, seven dependencies (token, session, settings, Redis, idempotency key,
the app-wide NUL check, the body) and the request handler. ``direct_checkout`` (a
``core/direct.DirectJsonMiddleware``, placed behind the default budget) answers a well-formed
checkout with ``place`` in a unit of work of its own, as the route's session would be, and
hands everything else to the route in ``orders/api.py``, which calls the same ``place`` and
documents them all.
"""

from __future__ import annotations

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.middleware import Middleware
from starlette.responses import Response

from agora.core.direct import DirectCall, DirectJsonMiddleware
from agora.core.idempotency import IdempotentRequest, StoredResponse, respond_once, user_scope
from agora.core.security import Principal
from agora.orders import service
from agora.orders.schemas import OrderIn, OrderOut


async def place(
    session: AsyncSession,
    principal: Principal,
    body: OrderIn,
    idempotency: IdempotentRequest,
    *,
    payment_timeout: int,
    redis: Redis,
) -> Response:
    """The caller's cart turned into an order, answered 201 with its ``Location`` (or the
    first answer again for a retry with the same ``Idempotency-Key``)."""

    async def place_once() -> StoredResponse:
        checkout = service.Checkout(
            shipping_address=body.shipping_address.model_dump(exclude_none=True),
            shipping_method=body.shipping_method,
            voucher_code=body.voucher_code,
            pickup_point_id=body.pickup_point_id,
        )
        order = await service.place_order(
            session,
            principal.user_id,
            body.cart_id,
            checkout,
            payment_timeout=payment_timeout,
            redis=redis,
        )
        return StoredResponse(
            201,
            OrderOut.model_validate(order).model_dump_json().encode(),
            {"Location": f"/api/v1/orders/{order.id}"},
        )

    stored = await respond_once(session, idempotency, user_scope(principal.user_id), place_once)
    return stored.to_response()


async def _direct_place(call: DirectCall) -> Response:
    services = call.services
    async with services.database.unit_of_work() as session:
        return await place(
            session,
            call.principal,
            call.body,
            call.idempotency,
            payment_timeout=services.settings.order_payment_timeout,
            redis=services.redis,
        )


def direct_checkout(path: str) -> Middleware:
    """The middleware answering well-formed checkouts at ``path`` without the router."""
    return Middleware(DirectJsonMiddleware, path=path, model=OrderIn, answer=_direct_place)
