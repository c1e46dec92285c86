"""Cart endpoints, for signed-in buyers and anonymous visitors (who hold a cart token)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response

from agora.cart import service
from agora.cart.schemas import CartItemIn, CartItemUpdate, CartOut
from agora.cart.service import CartOwner
from agora.core.dependencies import SessionDep
from agora.core.security import MaybePrincipal

CART_TOKEN_HEADER = "X-Cart-Token"  # noqa: S105 - a header name, not a secret
router = APIRouter(prefix="/carts", tags=["carts"])


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
    summary="Open a cart",
    responses={200: {"model": CartOut, "description": "The caller's cart already existed"}},
)
async def open_cart(owner: OwnerDep, session: SessionDep, response: Response) -> CartOut:
    """The caller's cart: 201 when created, 200 when it already existed. A signed-in caller who
    sends an anonymous cart's token gets that cart's items merged into theirs."""
    cart = await service.open_cart(session, owner)
    response.status_code = 201 if cart.is_new else 200
    response.headers["Location"] = f"/api/v1/carts/{cart.id}"
    return CartOut.model_validate(cart)


@router.get("/{cart_id}", summary="A cart at current prices")
async def get_cart(cart_id: uuid.UUID, owner: OwnerDep, session: SessionDep) -> CartOut:
    """The cart; 404 unless the caller owns it."""
    return CartOut.model_validate(await service.get_cart(session, cart_id, owner))


@router.post("/{cart_id}/items", status_code=201, summary="Add an item")
async def add_item(
    cart_id: uuid.UUID, body: CartItemIn, owner: OwnerDep, session: SessionDep, response: Response
) -> CartOut:
    """Add units of a variant; 409 ``insufficient_stock`` beyond what is available."""
    cart, item_id = await service.add_item(session, cart_id, owner, body.variant_id, body.quantity)
    response.headers["Location"] = f"/api/v1/carts/{cart_id}/items/{item_id}"
    return CartOut.model_validate(cart)


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
