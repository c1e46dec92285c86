"""The payments API: provider callbacks, the dev provider's completion, (staff) refunds."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from starlette.responses import Response

from agora.core.dependencies import SessionDep, SettingsDep
from agora.core.money import Money
from agora.payments import service
from agora.payments.models import Payment, Refund
from agora.payments.schemas import PaymentOut, RefundOut, WebhookProvider

router = APIRouter(tags=["payments"])
_ACKNOWLEDGED = frozenset({service.CallbackResult.ACCEPTED, service.CallbackResult.DUPLICATE})


@router.post(
    "/payments/webhooks/{provider}",
    summary="A payment provider's callback (Stripe webhook, Alipay notify, WeChat Pay notify)",
    response_class=Response,
    responses={400: {"description": "Refused: not authentic, or to be resent later"}},
)
async def provider_callback(
    provider: WebhookProvider, request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    """Verify the callback on its raw body, apply it once, answer as the provider expects."""
    gateway = service.provider_named(settings, provider)
    result = await service.handle_callback(session, gateway, await request.body(), request.headers)
    answer = gateway.acknowledgement() if result in _ACKNOWLEDGED else gateway.refusal(result.value)
    return Response(answer.body, answer.status_code, media_type=answer.media_type)


@router.post(
    "/payments/dev/{payment_id}/complete",
    summary="Complete a dev payment (only when the dev provider is enabled)",
)
async def complete_dev_payment(
    payment_id: uuid.UUID, session: SessionDep, settings: SettingsDep
) -> PaymentOut:
    """Play the success callback of a dev payment, as a real provider would send it."""
    payment = await service.complete_dev_payment(session, settings, payment_id)
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
