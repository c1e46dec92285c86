"""The payments API: provider callbacks, the dev provider's completion, (staff) refunds of an
order or of one payment."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from agora.core.bulkhead import Bulkhead
from agora.core.dependencies import RedisDep, ServicesDep, SessionDep, SettingsDep
from agora.core.idempotency import IdempotencyDep, StoredResponse, respond_once, user_scope
from agora.core.money import Money
from agora.core.security import CurrentPrincipal, StaffPrincipal
from agora.payments import service
from agora.payments.direct_callback import answer_callback
from agora.payments.models import Payment, Refund
from agora.payments.schemas import (
    PaymentCreate,
    PaymentOut,
    RefundCreate,
    RefundOut,
    WebhookProvider,
)

router = APIRouter(tags=["payments"])
# Each provider expects its own answer: plain text (Alipay, Stripe) or JSON (WeChat Pay).
_PROVIDER_ANSWER = {
    "text/plain": {"schema": {"type": "string"}},
    "application/json": {"schema": {"type": "object"}},
}


class RefundAsk:
    """A staff request for a refund, whichever endpoint it reaches (of an order, of a payment):
    the body, the caller, the unit of work and the ``Idempotency-Key``."""

    def __init__(
        self,
        body: RefundCreate,
        principal: StaffPrincipal,
        session: SessionDep,
        idempotency: IdempotencyDep,
    ) -> None:
        self.body = body
        self.principal = principal
        self.session = session
        self.idempotency = idempotency

    async def once(self, refund: service.Refunder, target_id: uuid.UUID) -> Response:
        """Ask ``refund`` to refund the target once per ``Idempotency-Key``: 202 with the
        refund, replayed on a retry."""

        async def accepted() -> StoredResponse:
            created, payment = await refund(
                self.session, target_id, self.body.amount, self.body.reason, self.principal.user_id
            )
            answer = refund_out(created, payment.currency).model_dump_json().encode()
            return StoredResponse(202, answer)

        scope = user_scope(self.principal.user_id)
        stored = await respond_once(self.session, self.idempotency, scope, accepted)
        return stored.to_response()


RefundAskDep = Annotated[RefundAsk, Depends()]


async def _opening_slot(request: Request) -> AsyncIterator[None]:
    """One of the process's payment-opening slots, held until the opening commits: taken after
    the caller is known and before the request's first statement, so openings waiting for one
    hold no connection."""
    openings: Bulkhead = request.app.state.payment_openings
    async with openings.slot():
        yield


OpeningSlot = Annotated[None, Depends(_opening_slot, scope="function")]


@router.post(
    "/orders/{order_id}/payments",
    status_code=201,
    summary="Pay an order through a provider",
    response_model=PaymentOut,
    responses={
        409: {"description": "The order is not awaiting payment"},
        503: {
            "description": "The provider cannot be reached (`provider_unavailable`), or too "
            "many payments are being opened at once (`payment_openings_busy`)"
        },
    },
)
async def create_payment(
    order_id: uuid.UUID,
    body: PaymentCreate,
    principal: CurrentPrincipal,
    _slot: OpeningSlot,
    session: SessionDep,
    settings: SettingsDep,
    idempotency: IdempotencyDep,
) -> Response:
    """Open a payment of the order's total; send an ``Idempotency-Key`` to retry safely."""

    async def open_payment() -> StoredResponse:
        payment = await service.create_payment(
            session, settings, order_id, body.provider, user_id=principal.user_id
        )
        return StoredResponse(
            201,
            payment_out(payment).model_dump_json().encode(),
            {"Location": f"/api/v1/payments/{payment.id}"},
        )

    stored = await respond_once(session, idempotency, user_scope(principal.user_id), open_payment)
    return stored.to_response()


@router.get("/payments/{payment_id}", summary="A payment of one of the caller's orders")
async def get_payment(
    payment_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep
) -> PaymentOut:
    """The payment's status and what the client needs to complete it (staff see every one)."""
    owner = None if principal.is_staff else principal.user_id
    return payment_out(await service.get_payment(session, payment_id, user_id=owner))


@router.post(
    "/orders/{order_id}/refunds",
    status_code=202,
    summary="Refund an order's payment, in full or in part (staff)",
    response_model=RefundOut,
    responses={409: {"description": "Nothing captured, or more than is left to refund"}},
)
async def create_refund(order_id: uuid.UUID, ask: RefundAskDep) -> Response:
    """Reserve the amount against the payment that paid the order and ask the provider; the
    provider's callback settles the refund (it stays ``pending`` until then). Send an
    ``Idempotency-Key`` to retry safely."""
    return await ask.once(service.request_refund, order_id)


@router.post(
    "/payments/{payment_id}/refunds",
    status_code=202,
    summary="Refund one payment, in full or in part (staff)",
    response_model=RefundOut,
    responses={409: {"description": "Not captured, or more than is left to refund"}},
)
async def create_payment_refund(payment_id: uuid.UUID, ask: RefundAskDep) -> Response:
    """Refund a specific captured payment, such as a second capture of an order already paid:
    the order moves to ``refunded`` only when the payment that paid it is refunded in full."""
    return await ask.once(service.refund_payment, payment_id)


@router.post(
    "/payments/webhooks/{provider}",
    summary="A payment provider's callback (Stripe webhook, Alipay notify, WeChat Pay notify)",
    response_class=Response,
    responses={
        200: {"description": "Applied or already known", "content": _PROVIDER_ANSWER},
        204: {"description": "Applied or already known (WeChat Pay)"},
        400: {
            "description": "Refused: not authentic, or to be resent later",
            "content": _PROVIDER_ANSWER,
        },
    },
)
async def provider_callback(
    provider: WebhookProvider, request: Request, services: ServicesDep
) -> Response:
    """Verify the callback on its raw body, apply it once, answer as the provider expects
    (well-formed callbacks are answered before routing by ``direct_callback.py``, the same way).
    """
    return await answer_callback(services, provider, await request.body(), request.headers)


@router.post(
    "/payments/dev/{payment_id}/complete",
    summary="Complete a dev payment (only when the dev provider is enabled)",
)
async def complete_dev_payment(
    payment_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
) -> PaymentOut:
    """Play the success callback of a dev payment, as a real provider would send it; only the
    order's buyer (or staff) may, anyone else gets 404."""
    owner = None if principal.is_staff else principal.user_id
    payment = await service.complete_dev_payment(
        session, redis, settings, payment_id, user_id=owner
    )
    return payment_out(payment)


def payment_out(payment: Payment) -> PaymentOut:
    """The response body of a payment."""
    return PaymentOut(
        id=payment.id,
        order_id=payment.order_id,
        provider=payment.provider,
        status=payment.status.value,
        amount=Money(amount=payment.amount, currency=payment.currency),
        created_at=payment.created_at,
        **payment.client_action,
    )


def refund_out(refund: Refund, currency: str) -> RefundOut:
    """The response body of a refund."""
    return RefundOut(
        id=refund.id,
        payment_id=refund.payment_id,
        status=refund.status.value,
        amount=Money(amount=refund.amount, currency=currency),
        reason=refund.reason,
        created_at=refund.created_at,
    )
