"""Opening a payment of an order (one open at a time, expiring with the order) and closing it
at its provider when the order can no longer be paid."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.db import Database, utcnow
from agora.core.errors import Conflict, NotFound, ServiceUnavailable, ValidationFailed
from agora.orders import service as orders
from agora.orders.models import OrderStatus
from agora.payments import repository
from agora.payments.models import Payment, PaymentStatus
from agora.payments.providers import enabled_providers
from agora.payments.providers.base import PaymentRequest, ProviderError
from agora.payments.service.common import log, lookup, notify_url, provider_named
from agora.settings import Settings


async def create_payment(
    session: AsyncSession,
    settings: Settings,
    order_id: uuid.UUID,
    provider_name: str,
    *,
    user_id: uuid.UUID | None,
) -> Payment:
    """Open a payment of the order's frozen total at ``provider_name`` (the buyer's own order
    when ``user_id`` is given: 404 otherwise); the payment holds what the client needs next
    (client secret, redirect URL or QR code URL) and stops being payable at the provider when
    the order's payment deadline passes.

    An order has one open payment: asking again with the same provider gives it back; another
    provider replaces it, once the open one is closed at its provider (409
    ``payment_in_progress`` if it cannot be: the buyer may be paying it right now).
    """
    if provider_name not in settings.enabled_payment_providers:
        raise ValidationFailed(
            f"The payment provider {provider_name!r} is not enabled.", code="provider_not_enabled"
        )
    provider = provider_named(settings, provider_name)
    order = await orders.get_order(session, order_id, user_id=user_id)
    if order.status != OrderStatus.PENDING_PAYMENT:
        raise Conflict("This order is not awaiting payment.", code="order_not_payable")
    if provider.currencies is not None and order.currency not in provider.currencies:
        raise ValidationFailed(
            f"{provider_name} does not take payments in {order.currency}.",
            code="currency_not_supported",
        )
    current = await repository.open_payment_of_order(session, order.id)
    if current is not None:
        if current.provider == provider_name:
            return current
        await _replace(session, settings, current)
    payment = await repository.add_open_payment(
        session,
        order_id=order.id,
        provider=provider_name,
        amount=order.total_amount,
        currency=order.currency,
        created_at=utcnow(),
    )
    if payment is None:
        raise _in_progress()
    request = PaymentRequest(
        payment.id,
        order.total_amount,
        order.currency,
        f"Order {order.number}",
        notify_url=notify_url(settings, provider_name),
        expires_at=order.payment_due_at,
    )
    try:
        created = await provider.create_payment(request)
    except ProviderError as error:
        raise _unavailable(provider_name, error) from error
    payment.provider_reference = created.provider_reference
    payment.client_action = {
        key: value
        for key, value in (
            ("client_secret", created.client_secret),
            ("redirect_url", created.redirect_url),
            ("code_url", created.code_url),
        )
        if value
    }
    await session.flush()
    return payment


async def _replace(session: AsyncSession, settings: Settings, payment: Payment) -> None:
    """Cancel the order's open payment and close it at its provider, before another opens."""
    if not await repository.end_pending(session, payment.id, PaymentStatus.CANCELLED):
        raise _in_progress()
    provider = enabled_providers(settings).get(payment.provider)
    if provider is None:
        return
    try:
        await provider.close(lookup(payment))
    except ProviderError as error:
        if error.is_retryable:
            raise _unavailable(payment.provider, error) from error
        raise _in_progress() from error


def _in_progress() -> Conflict:
    return Conflict(
        "Another payment of this order is open and cannot be closed now.",
        code="payment_in_progress",
    )


def _unavailable(provider_name: str, error: ProviderError) -> ServiceUnavailable:
    log.warning("payment_provider_unavailable", provider=provider_name, error=str(error))
    return ServiceUnavailable(
        "The payment provider cannot be reached; try again shortly.",
        code="provider_unavailable",
        headers={"Retry-After": "5"},
    )


async def close_open_payment(database: Database, settings: Settings, order_id: uuid.UUID) -> bool:
    """Close the open payment of an order that can no longer be paid (run after its
    cancellation commits; safe to run twice); whether a payment was closed. A refusal (the
    buyer paid meanwhile) leaves it open: reconciliation or the callback captures it, and the
    capture is flagged for a refund."""
    async with database.unit_of_work() as session:
        order = await orders.get_order(session, order_id)
        payment = await repository.open_payment_of_order(session, order_id)
    if payment is None or order.status is OrderStatus.PENDING_PAYMENT:
        return False
    return await _close(database, settings, payment)


async def _close(database: Database, settings: Settings, payment: Payment) -> bool:
    """Close a payment at its provider, outside any transaction, then mark it cancelled."""
    provider = enabled_providers(settings).get(payment.provider)
    if provider is not None:
        try:
            await provider.close(lookup(payment))
        except ProviderError as error:
            log.warning("payment_close_failed", payment_id=str(payment.id), error=str(error))
            return False
    async with database.unit_of_work() as session:
        return await repository.end_pending(session, payment.id, PaymentStatus.CANCELLED)


async def get_payment(
    session: AsyncSession, payment_id: uuid.UUID, *, user_id: uuid.UUID | None
) -> Payment:
    """A payment; when ``user_id`` is given its order must be theirs (404 otherwise)."""
    payment = await repository.get_payment(session, payment_id)
    if payment is None:
        raise NotFound("No such payment.", code="payment_not_found")
    await orders.get_order(session, payment.order_id, user_id=user_id)
    return payment
