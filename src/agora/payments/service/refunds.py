"""Refunds: of the payment that paid an order or of one payment, reserved atomically against
the capture, submitted to the provider by a task."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.db import utcnow
from agora.core.errors import Conflict, NotFound, ValidationFailed
from agora.core.jobs import defer
from agora.core.money import Money
from agora.payments import repository
from agora.payments.models import Payment, PaymentStatus, Refund, RefundStatus
from agora.payments.providers.base import ProviderError, RefundRequest
from agora.payments.service.callbacks import on_refunded
from agora.payments.service.common import (
    SUBMIT_REFUND_TASK,
    log,
    lookup,
    notify_url,
    provider_named,
)
from agora.settings import Settings

# ``request_refund`` and ``refund_payment``: (session, what to refund, amount, reason, by whom).
Refunder = Callable[
    [AsyncSession, uuid.UUID, Money | None, str, uuid.UUID | None],
    Awaitable[tuple[Refund, Payment]],
]


async def request_refund(
    session: AsyncSession,
    order_id: uuid.UUID,
    amount: Money | None,
    reason: str,
    requested_by: uuid.UUID | None,
) -> tuple[Refund, Payment]:
    """Refund ``amount`` (everything left when None) of the payment that paid the order."""
    payment = await repository.captured_payment_of_order(session, order_id)
    if payment is None:
        raise Conflict("This order has no captured payment to refund.", code="not_refundable")
    return await _refund(session, payment, amount, reason, requested_by)


async def refund_payment(
    session: AsyncSession,
    payment_id: uuid.UUID,
    amount: Money | None,
    reason: str,
    requested_by: uuid.UUID | None,
) -> tuple[Refund, Payment]:
    """Refund ``amount`` (everything left when None) of one captured payment, such as a second
    capture of an order another payment already paid."""
    payment = await repository.get_payment(session, payment_id)
    if payment is None:
        raise NotFound("No such payment.", code="payment_not_found")
    if payment.status is not PaymentStatus.SUCCEEDED:
        raise Conflict("This payment has captured nothing to refund.", code="not_refundable")
    return await _refund(session, payment, amount, reason, requested_by)


async def _refund(
    session: AsyncSession,
    payment: Payment,
    amount: Money | None,
    reason: str,
    requested_by: uuid.UUID | None,
) -> tuple[Refund, Payment]:
    """The amount is reserved atomically against what was captured, so concurrent refunds can
    never give back more than was paid; the provider is asked after commit, by a task."""
    if amount is not None and amount.currency != payment.currency:
        raise ValidationFailed(
            f"The payment was made in {payment.currency}.", code="currency_mismatch"
        )
    to_refund = (
        amount.amount if amount is not None else payment.amount - payment.refund_reserved_amount
    )
    if to_refund <= 0 or not await repository.reserve_refund(session, payment.id, to_refund):
        raise Conflict(
            "The refund would exceed what was captured and not yet refunded.",
            code="refund_exceeds_captured",
        )
    refund = await repository.add_refund(
        session,
        Refund(
            payment_id=payment.id,
            amount=to_refund,
            reason=reason,
            requested_by=requested_by,
            created_at=utcnow(),
        ),
    )
    defer(session, SUBMIT_REFUND_TASK, str(refund.id))
    return refund, payment


async def submit_refund(
    session: AsyncSession, redis: Redis, settings: Settings, refund_id: uuid.UUID
) -> None:
    """Ask the provider for a pending refund (a task; safe to run twice: the provider sees the
    same refund id). A refusal fails the refund and frees its amount; ``ProviderError`` with
    ``is_retryable`` propagates so the task is retried."""
    refund = await repository.lock_refund(session, refund_id)
    if refund is None or refund.status is not RefundStatus.PENDING or refund.submitted_at:
        return
    payment_row = await repository.get_payment(session, refund.payment_id)
    assert payment_row is not None, "a refund always belongs to a payment"
    provider = provider_named(settings, payment_row.provider)
    request = RefundRequest(
        refund.id,
        lookup(payment_row),
        refund.amount,
        refund.reason or "refund",
        notify_url=notify_url(settings, payment_row.provider),
    )
    try:
        submitted = await provider.refund(request)
    except ProviderError as error:
        if error.is_retryable:
            raise
        log.error("refund_refused", refund_id=str(refund.id), error=str(error))
        await repository.settle_refund(session, refund.id, payment_row.id, RefundStatus.FAILED)
        return
    await repository.mark_refund_submitted(session, refund.id, submitted.provider_reference)
    if submitted.is_settled:
        await repository.settle_refund(session, refund.id, payment_row.id, RefundStatus.SUCCEEDED)
        await on_refunded(session, redis, payment_row)
