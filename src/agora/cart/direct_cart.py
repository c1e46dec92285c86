"""Opening a cart and adding an item answered before routing, and what they share with their
routes.

The first two requests of a checkout, the second one repeated for every item: through FastAPI
each came with the router, four or five dependencies (token, cart owner, session, the
app-wide NUL check, the body) and the request handler around a few statements.
``direct_open_cart`` and ``direct_add_item`` (``core/direct.DirectJsonMiddleware``, placed
behind the default budget) answer a well-formed request of a signed-in buyer with ``open_cart``
or ``add_item`` in a unit of work of its own, as the route's session would be; anything else (a
cart token sent, no bearer token) goes to the route in ``cart/api.py``, which calls the same
function and documents them all.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.middleware import Middleware
from starlette.responses import Response

from agora.cart import service
from agora.cart.schemas import CartItemIn, CartOut
from agora.cart.service import CartOwner, CartView
from agora.core.direct import DirectAnswer, DirectCall, DirectJsonMiddleware

CART_TOKEN_HEADER = "X-Cart-Token"  # noqa: S105 - a header name, not a secret
_TOKEN = frozenset({CART_TOKEN_HEADER.lower().encode()})


async def open_cart(session: AsyncSession, owner: CartOwner) -> Response:
    """The caller's cart, answered 201 when created and 200 when it existed, with its
    ``Location``."""
    cart = await service.open_cart(session, owner)
    return _cart_response(cart, 201 if cart.is_new else 200, f"/api/v1/carts/{cart.id}")


async def add_item(
    session: AsyncSession, cart_id: uuid.UUID, owner: CartOwner, body: CartItemIn
) -> Response:
    """The cart with the item added, answered 201 with the line's ``Location``."""
    cart, item_id = await service.add_item(session, cart_id, owner, body.variant_id, body.quantity)
    return _cart_response(cart, 201, f"/api/v1/carts/{cart_id}/items/{item_id}")


def _cart_response(cart: CartView, status_code: int, location: str) -> Response:
    """``CartOut`` of ``cart`` encoded once, as the route's response model would be."""
    return Response(
        CartOut.model_validate(cart).model_dump_json(),
        status_code,
        {"Location": location},
        media_type="application/json",
    )


async def _direct_open_cart(call: DirectCall) -> Response:
    async with call.services.database.unit_of_work() as session:
        return await open_cart(session, CartOwner(call.principal.user_id, None))


async def _direct_add_item(call: DirectCall) -> Response:
    async with call.services.database.unit_of_work() as session:
        owner = CartOwner(call.principal.user_id, None)
        return await add_item(session, call.path_params["cart_id"], owner, call.body)


def direct_open_cart(path: str) -> Middleware:
    """The middleware opening a signed-in buyer's cart at ``path`` without the router."""
    return _signed_in_only(path, None, _direct_open_cart)


def direct_add_item(path: str) -> Middleware:
    """The middleware answering well-formed additions at ``path`` (the route's template, with
    its ``{cart_id}``) without the router."""
    return _signed_in_only(path, CartItemIn, _direct_add_item)


def _signed_in_only(path: str, model: type[BaseModel] | None, answer: DirectAnswer) -> Middleware:
    """A direct handler of requests without a cart token: a request with one (an anonymous
    cart, or one to merge) goes to the route."""
    return Middleware(
        DirectJsonMiddleware, path=path, model=model, answer=answer, passing_headers=_TOKEN
    )
