"""The flash-sale API: staff schedule a sale; buyers read it, buy, and follow their ticket.

The purchase endpoint opens no database session: the caller is authorised from the token's
claims, and its rate limits, the check that its token was not revoked and the purchase itself
are one Redis Lua call.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response, status

from agora.core.dependencies import AppServices, RedisDep, SessionDep, app_services
from agora.core.idempotency import REPLAYED_HEADER, IdempotencyDep
from agora.core.money import Money
from agora.core.ratelimit import (
    BudgetCall,
    client_identity,
    client_ip,
    default_budget,
    rate_limit,
)
from agora.core.security import CurrentPrincipal, Principal, StaffPrincipal
from agora.core.serialization import dumps
from agora.flashsale import service
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
    services = app_services(request)
    address = body.shipping_address
    ticket = await service.purchase(
        services.redis,
        sale_id,
        principal.user_id,
        body.quantity,
        shipping_address=address.model_dump(exclude_none=True) if address else None,
        request_key=idempotency.key,
        fingerprint=idempotency.fingerprint,
        budgets=purchase_budgets(services, request, principal),
    )
    # The ticket's path next to this one: ``url_for`` would walk every route of the app.
    sale_path = request.scope["path"].removesuffix("/purchase")
    headers = {"Location": f"{sale_path}/tickets/{ticket.ticket_id}"}
    if ticket.is_replay:
        headers[REPLAYED_HEADER] = "true"
    # The body is ``PurchaseAccepted``, encoded directly: a UUID needs no model to validate it.
    body_bytes = dumps({"ticket_id": ticket.ticket_id})
    return Response(body_bytes, status.HTTP_202_ACCEPTED, headers, media_type="application/json")


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


def purchase_budgets(services: AppServices, request: Request, principal: Principal) -> BudgetCall:
    """The default budget (skipped by the middleware on the purchase path) and the purchase's
    own ones, per client address and per buyer, with the check that the token was not revoked:
    spent by the purchase's own Redis call (429 when one is spent, 401 when revoked)."""
    settings = services.settings
    return BudgetCall.of(
        [
            (default_budget(settings), client_identity(request, principal)),
            (rate_limit("flash-sale-ip", settings.rate_limit_flash_sale_ip), client_ip(request)),
            (
                rate_limit("flash-sale-buyer", settings.rate_limit_flash_sale_buyer),
                str(principal.user_id),
            ),
        ],
        principal=principal,
    )
