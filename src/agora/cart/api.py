"""Cart endpoints, for signed-in buyers and anonymous visitors (who hold a cart token)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response

from agora.cart import direct_cart, service
from agora.cart.direct_cart import CART_TOKEN_HEADER
from agora.cart.schemas import CartItemIn, CartItemUpdate, CartOut
from agora.cart.service import CartOwner
from agora.core.dependencies import SessionDep
from agora.core.security import MaybePrincipal

PREFIX = "/carts"
ADD_ITEM_PATH = "/{cart_id}/items"
router = APIRouter(prefix=PREFIX, tags=["carts"])


async def cart_owner(
    principal: MaybePrincipal,
    cart_token: Annotated[
        str | None, Header(alias=CART_TOKEN_HEADER, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")
    ] = None,
) -> CartOwner:
    """The caller as a cart owner: its user id and/or the cart token it sends."""
    return CartOwner(principal.user_id if principal else None, cart_token)


OwnerDep = Annotated[CartOwner, Depends(cart_owner)]


@router.post(
    "",
    status_code=201,
    response_model=CartOut,
    summary="Open a cart",
    responses={200: {"model": CartOut, "description": "The caller's cart already existed"}},
)
async def open_cart(owner: OwnerDep, session: SessionDep) -> Response:
    """The caller's cart: 201 when created, 200 when it already existed. A signed-in caller who
    sends an anonymous cart's token gets that cart's items merged into theirs."""
    # A signed-in buyer's cart is opened before routing, by the same ``open_cart``
    # (``cart/direct_cart.py``); this route answers the others and documents them all.
    return await direct_cart.open_cart(session, owner)


@router.get("/{cart_id}", summary="A cart at current prices")
async def get_cart(cart_id: uuid.UUID, owner: OwnerDep, session: SessionDep) -> CartOut:
    """The cart; 404 unless the caller owns it."""
    return CartOut.model_validate(await service.get_cart(session, cart_id, owner))


@router.post(ADD_ITEM_PATH, status_code=201, response_model=CartOut, summary="Add an item")
async def add_item(
    cart_id: uuid.UUID, body: CartItemIn, owner: OwnerDep, session: SessionDep
) -> Response:
    """Add units of a variant; 409 ``insufficient_stock`` beyond what is available."""
    # Well-formed additions by a signed-in buyer are answered before routing, by the same
    # ``add_item`` (``cart/direct_cart.py``); this route answers the others and documents them.
    return await direct_cart.add_item(session, cart_id, owner, body)


@router.patch("/{cart_id}/items/{item_id}", summary="Change an item's quantity")
async def update_item(
    cart_id: uuid.UUID,
    item_id: uuid.UUID,
    body: CartItemUpdate,
    owner: OwnerDep,
    session: SessionDep,
) -> CartOut:
    """Set the quantity of a line."""
    return CartOut.model_validate(
        await service.update_item(session, cart_id, owner, item_id, body.quantity)
    )


@router.delete("/{cart_id}/items/{item_id}", status_code=204, summary="Remove an item")
async def remove_item(
    cart_id: uuid.UUID, item_id: uuid.UUID, owner: OwnerDep, session: SessionDep
) -> None:
    """Remove a line."""
    await service.remove_item(session, cart_id, owner, item_id)
