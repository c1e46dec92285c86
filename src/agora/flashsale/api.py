"""The flash-sale API: staff schedule a sale; buyers read it, buy, and follow their ticket.

The purchase endpoint opens no database session: the caller is authorised from the token's
claims, and its rate limits, the check that its token was not revoked and the purchase itself
are one Redis Lua call. Well-formed purchases are answered before routing by
``flashsale/direct_purchase.py`` with the same ``accept``; this route answers the rest (a bad
token, a body that fails validation) and documents the operation.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response, status

from agora.core.dependencies import RedisDep, SessionDep, app_services
from agora.core.idempotency import IdempotencyDep
from agora.core.money import Money
from agora.core.security import CurrentPrincipal, StaffPrincipal
from agora.flashsale import direct_purchase, service
from agora.flashsale.schemas import (
    FlashSaleCreate,
    FlashSaleResponse,
    PurchaseAccepted,
    PurchaseRequest,
    TicketResponse,
)

PREFIX = "/flash-sales"
PURCHASE_PATH = PREFIX + "/{sale_id}/purchase"
router = APIRouter(prefix=PREFIX, tags=["flash sales"])


def _sale_response(view: service.SaleView) -> FlashSaleResponse:
    fields = view.fields
    return FlashSaleResponse(
        id=fields["id"],
        variant_id=fields["variant_id"],
        price=Money(**fields["price"]),
        quantity=fields["quantity"],
        remaining=view.remaining,
        per_user_limit=fields["per_user_limit"],
        starts_at=fields["starts_at"],
        ends_at=fields["ends_at"],
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=FlashSaleResponse,
    summary="Schedule a flash sale (staff); its units are set aside from regular stock",
)
async def create_flash_sale(
    body: FlashSaleCreate,
    request: Request,
    response: Response,
    _: StaffPrincipal,
    session: SessionDep,
    redis: RedisDep,
) -> FlashSaleResponse:
    terms = service.SaleTerms(
        variant_id=body.variant_id,
        warehouse_id=body.warehouse_id,
        price_amount=body.price.amount,
        currency=body.price.currency,
        quantity=body.quantity,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        per_user_limit=body.per_user_limit,
    )
    view = await service.schedule_sale(session, redis, terms)
    response.headers["Location"] = request.url_for("get_flash_sale", sale_id=view.fields["id"]).path
    return _sale_response(view)


@router.get(
    "/{sale_id}",
    response_model=FlashSaleResponse,
    summary="A flash sale with the units left right now (served from Redis)",
)
async def get_flash_sale(
    sale_id: uuid.UUID, session: SessionDep, redis: RedisDep
) -> FlashSaleResponse:
    return _sale_response(await service.sale_view(session, redis, sale_id))


@router.post(
    "/{sale_id}/purchase",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=PurchaseAccepted,
    summary="Try to buy: 202 with a ticket, or 409 sold_out / limit_reached / not_started / ended",
)
async def purchase(
    sale_id: uuid.UUID,
    body: PurchaseRequest,
    request: Request,
    principal: CurrentPrincipal,
    idempotency: IdempotencyDep,
) -> Response:
    # Well-formed purchases are answered before routing, by the same ``accept``
    # (``flashsale/direct_purchase.py``); this route answers the others and documents them all.
    return await direct_purchase.accept(
        app_services(request), request, sale_id, principal, body, idempotency
    )


@router.get(
    "/{sale_id}/tickets/{ticket_id}",
    response_model=TicketResponse,
    summary="Where the caller's ticket stands: queued, ordered (with its order) or rejected",
)
async def get_ticket(
    sale_id: uuid.UUID,
    ticket_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    redis: RedisDep,
) -> TicketResponse:
    view = await service.ticket_view(
        session,
        redis,
        sale_id,
        ticket_id,
        viewer_id=principal.user_id,
        viewer_is_staff=principal.is_staff,
    )
    return TicketResponse(
        ticket_id=view.ticket_id,
        sale_id=view.sale_id,
        status=view.status,
        quantity=view.quantity,
        order_id=view.order_id,
        reason=view.reason,
    )
