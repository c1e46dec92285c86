"""Order endpoints: checkout (idempotent), order history, cancel; staff search and moves;
shipping methods and vouchers."""

from __future__ import annotations

import uuid
from typing import Annotated, TypeVar

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, EmailStr

from agora.core.dependencies import RedisDep, SessionDep, SettingsDep
from agora.core.idempotency import IdempotencyDep
from agora.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from agora.core.security import CurrentPrincipal, StaffPrincipal
from agora.core.validation import PositiveBigInt
from agora.orders import direct_checkout, pricing, service
from agora.orders.schemas import (
    Address,
    OrderIn,
    OrderOut,
    OrderPage,
    OrderStatusIn,
    OrderStatusName,
    ShippingMethodIn,
    ShippingMethodList,
    ShippingMethodOut,
    VoucherIn,
    VoucherList,
    VoucherOut,
)

router = APIRouter(tags=["orders"])
CHECKOUT_PATH = "/orders"
_Out = TypeVar("_Out", bound=BaseModel)


@router.post(
    CHECKOUT_PATH,
    status_code=201,
    response_model=OrderOut,
    summary="Check out a cart",
    responses={409: {"description": "Out of stock, cart already checked out, key in flight"}},
)
async def create_order(
    body: OrderIn,
    principal: CurrentPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    redis: RedisDep,
    idempotency: IdempotencyDep,
) -> Response:
    """Turn the caller's cart into an order awaiting payment, its stock reserved until
    ``AGORA_ORDER_PAYMENT_TIMEOUT``. Send an ``Idempotency-Key`` to retry safely."""
    # Well-formed checkouts are answered before routing, by the same ``place``
    # (``orders/direct_checkout.py``); this route answers the others and documents them all.
    return await direct_checkout.place(
        session,
        principal,
        body,
        idempotency,
        payment_timeout=settings.order_payment_timeout,
        redis=redis,
    )


@router.get("/orders", summary="List orders")
async def list_orders(
    principal: CurrentPrincipal,
    session: SessionDep,
    status: OrderStatusName | None = None,
    number: PositiveBigInt | None = None,
    user_id: Annotated[uuid.UUID | None, Query(description="Staff only")] = None,
    email: Annotated[EmailStr | None, Query(description="Staff only: the buyer's email")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> OrderPage:
    """A buyer's own orders, newest first; staff see every order and may filter by buyer."""
    orders, next_cursor = await service.list_orders(
        session,
        user_id=user_id if principal.is_staff else principal.user_id,
        email=email if principal.is_staff else None,
        status=status,
        number=number,
        cursor=cursor,
        limit=limit,
    )
    return OrderPage(
        items=[OrderOut.model_validate(order) for order in orders], next_cursor=next_cursor
    )


@router.get("/orders/{order_id}", summary="An order")
async def get_order(
    order_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep
) -> OrderOut:
    """The order; 404 when it is another buyer's."""
    owner = None if principal.is_staff else principal.user_id
    return OrderOut.model_validate(await service.get_order(session, order_id, user_id=owner))


@router.post("/orders/{order_id}/cancel", summary="Cancel an unpaid order")
async def cancel_order(
    order_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep, redis: RedisDep
) -> OrderOut:
    """Cancel an order awaiting payment and release its stock; 409 once it is paid."""
    owner = None if principal.is_staff else principal.user_id
    reason = "staff" if principal.is_staff else "buyer"
    order = await service.cancel_order(session, order_id, reason=reason, redis=redis, user_id=owner)
    return OrderOut.model_validate(order)


@router.put("/orders/{order_id}/shipping-address", summary="Set where an order ships")
async def set_shipping_address(
    order_id: uuid.UUID, body: Address, principal: CurrentPrincipal, session: SessionDep
) -> OrderOut:
    """Set or replace the shipping address of the caller's order (staff: any order) until it
    ships: a flash-sale order bought without one needs it before it can ship. 409 once shipped,
    cancelled or refunded."""
    owner = None if principal.is_staff else principal.user_id
    order = await service.set_shipping_address(
        session, order_id, body.model_dump(exclude_none=True), user_id=owner
    )
    return OrderOut.model_validate(order)


@router.patch("/orders/{order_id}", summary="Move an order (staff)")
async def move_order(
    order_id: uuid.UUID,
    body: OrderStatusIn,
    _: StaffPrincipal,
    session: SessionDep,
    redis: RedisDep,
) -> OrderOut:
    """Move an order along its state machine; 409 for an illegal move, and 409
    ``shipping_address_missing`` to ship an order without a shipping address."""
    order = await service.move_order(session, order_id, body.status, redis)
    return OrderOut.model_validate(order)


@router.get("/shipping-methods", summary="Shipping methods")
async def list_shipping_methods(session: SessionDep) -> ShippingMethodList:
    """The active shipping methods and their prices."""
    methods = await pricing.list_shipping_methods(session)
    return ShippingMethodList(items=[ShippingMethodOut.model_validate(m) for m in methods])


@router.get("/shipping-methods/{code}", summary="A shipping method")
async def get_shipping_method(code: str, session: SessionDep) -> ShippingMethodOut:
    """One shipping method and its prices."""
    return ShippingMethodOut.model_validate(await pricing.get_shipping_method(session, code))


@router.post("/shipping-methods", status_code=201, summary="Create a shipping method (staff)")
async def create_shipping_method(
    body: ShippingMethodIn, _: StaffPrincipal, session: SessionDep, response: Response
) -> ShippingMethodOut:
    """A new shipping method; 409 if its code is taken."""
    method = await pricing.create_shipping_method(session, **body.model_dump())
    return _located(response, f"shipping-methods/{method.code}", ShippingMethodOut, method)


@router.get("/vouchers", summary="Vouchers (staff)")
async def list_vouchers(_: StaffPrincipal, session: SessionDep) -> VoucherList:
    """Every voucher with its use count."""
    vouchers = await pricing.list_vouchers(session)
    return VoucherList(items=[VoucherOut.model_validate(v) for v in vouchers])


@router.get("/vouchers/{voucher_id}", summary="A voucher (staff)")
async def get_voucher(voucher_id: uuid.UUID, _: StaffPrincipal, session: SessionDep) -> VoucherOut:
    """One voucher with its use count."""
    return VoucherOut.model_validate(await pricing.get_voucher(session, voucher_id))


@router.post("/vouchers", status_code=201, summary="Create a voucher (staff)")
async def create_voucher(
    body: VoucherIn, _: StaffPrincipal, session: SessionDep, response: Response
) -> VoucherOut:
    """A new voucher; 409 if its code is taken."""
    voucher = await pricing.create_voucher(session, **body.model_dump())
    return _located(response, f"vouchers/{voucher.id}", VoucherOut, voucher)


def _located(response: Response, path: str, schema: type[_Out], row: object) -> _Out:
    """``row`` shaped by ``schema``, its ``Location`` (``/api/v1/<path>``) set on ``response``."""
    response.headers["Location"] = f"/api/v1/{path}"
    return schema.model_validate(row)
