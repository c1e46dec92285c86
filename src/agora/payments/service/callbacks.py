"""Applying verified provider callbacks exactly once (see the package docstring), and the dev
provider's completion, which plays one."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping

from prometheus_client import Counter
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.errors import Conflict, NotFound
from agora.core.outbox import record_event
from agora.orders import service as orders
from agora.payments import repository
from agora.payments.models import InboxOutcome, Payment, PaymentFlag, PaymentStatus, RefundStatus
from agora.payments.providers.base import (
    CallbackEvent,
    CallbackRejected,
    EventKind,
    PaymentProvider,
)
from agora.payments.service.common import log, provider_named
from agora.settings import Settings

PAYMENT_FAILED_TOPIC = "payment.failed"

CALLBACKS = Counter(
    "agora_payment_callbacks_total", "Payment callbacks received", ["provider", "result"]
)


class CallbackResult(enum.StrEnum):
    """How to answer a callback: acknowledge it, refuse it, or ask for it again later."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    RETRY_LATER = "retry_later"


async def handle_callback(
    session: AsyncSession,
    redis: Redis,
    provider: PaymentProvider,
    body: bytes,
    headers: Mapping[str, str],
) -> CallbackResult:
    """Verify a provider's callback on its raw body and apply it exactly once."""
    try:
        event = provider.parse_callback(body, headers)
    except CallbackRejected as error:
        log.warning("payment_callback_rejected", provider=provider.name, reason=str(error))
        result = CallbackResult.REJECTED
    else:
        result = await apply_event(session, redis, provider.name, event)
    CALLBACKS.labels(provider.name, result.value).inc()
    return result


async def apply_event(
    session: AsyncSession, redis: Redis, provider: str, event: CallbackEvent
) -> CallbackResult:
    """Apply a verified event once: deduplicated by the inbox, serialised by the payment's lock.

    A redelivery of a stored event is answered from one indexed lookup, before any lock or write;
    one that races its first delivery misses it, waits on the payment's lock, and is caught by
    the inbox's unique key.
    """
    if await repository.is_known_event(session, provider, event.event_id):
        return CallbackResult.DUPLICATE
    is_ignored = event.kind is EventKind.IGNORED
    payment, is_new = await repository.lock_and_store(session, provider, event, is_ignored)
    if payment is None and not is_ignored:
        log.info("payment_callback_unknown_payment", provider=provider, event_id=event.event_id)
        return CallbackResult.RETRY_LATER
    if not is_new:
        return CallbackResult.DUPLICATE
    outcome = await _apply(session, redis, payment, event) if payment else InboxOutcome.IGNORED
    if outcome is not InboxOutcome.APPLIED:
        await repository.set_inbox_outcome(session, provider, event.event_id, outcome)
    log.info(
        "payment_callback_applied",
        provider=provider,
        event_id=event.event_id,
        kind=event.kind.value,
        outcome=outcome.value,
    )
    return CallbackResult.ACCEPTED


async def _apply(
    session: AsyncSession, redis: Redis, payment: Payment, event: CallbackEvent
) -> InboxOutcome:
    if event.kind is EventKind.PAYMENT_SUCCEEDED:
        return await _capture(session, payment, event)
    if event.kind is EventKind.PAYMENT_FAILED:
        changed = await repository.end_pending(session, payment.id, PaymentStatus.FAILED)
        if changed:
            _announce_failure(session, payment)
        return InboxOutcome.APPLIED if changed else InboxOutcome.ALREADY_APPLIED
    if event.kind is EventKind.REFUND_SUCCEEDED:
        return await _settle_refunds(session, redis, payment, event)
    if event.kind is EventKind.REFUND_FAILED and event.refund_id is not None:
        amount = await repository.settle_refund(
            session, event.refund_id, payment.id, RefundStatus.FAILED
        )
        return InboxOutcome.APPLIED if amount is not None else InboxOutcome.ALREADY_APPLIED
    return InboxOutcome.IGNORED


async def _capture(session: AsyncSession, payment: Payment, event: CallbackEvent) -> InboxOutcome:
    if event.amount != payment.amount or event.currency != payment.currency:
        detail = (
            f"provider reported {event.amount} {event.currency}, "
            f"payment is {payment.amount} {payment.currency} (event {event.event_id})"
        )
        await repository.flag_payment(session, payment.id, PaymentFlag.AMOUNT_MISMATCH, detail)
        log.error("payment_amount_mismatch", payment_id=str(payment.id), detail=detail)
        return InboxOutcome.AMOUNT_MISMATCH
    if not await repository.mark_succeeded(session, payment.id, event.provider_reference):
        return InboxOutcome.ALREADY_APPLIED
    await _on_captured(session, payment)
    return InboxOutcome.APPLIED


async def _on_captured(session: AsyncSession, payment: Payment) -> None:
    """The money is in: the order becomes paid, its reserved stock allocated.

    A capture the order cannot take (it was cancelled meanwhile, or another payment paid it
    first) is flagged for a refund. ``pay`` waits on the order's row, so by the time it returns
    a competing capture has committed. A capture that moved the order is its first (any other
    would have moved it, in the same transaction as its own capture); one that found it paid
    looks for the capture that paid it.
    """
    try:
        if await orders.pay(session, payment.order_id):
            return
    except Conflict as error:
        await _flag_unpayable(session, payment, f"order cannot be paid: {error.detail}")
        return
    other = await repository.other_captured_payment(session, payment.order_id, payment.id)
    if other is not None:
        await _flag_unpayable(session, payment, f"order already paid by payment {other}")


async def _flag_unpayable(session: AsyncSession, payment: Payment, detail: str) -> None:
    await repository.flag_payment(session, payment.id, PaymentFlag.ORDER_NOT_PAYABLE, detail)
    log.error("payment_captured_for_unpayable_order", payment_id=str(payment.id), detail=detail)


async def _settle_refunds(
    session: AsyncSession, redis: Redis, payment: Payment, event: CallbackEvent
) -> InboxOutcome:
    """Settle the refund the event names, or (Stripe's ``charge.refunded``, which gives the
    charge's refunded total) the pending refunds that total covers, oldest first. ``payment``
    was read under its row lock, so its refunded amount is current."""
    settled = 0
    if event.refund_id is not None:
        amount = await repository.settle_refund(
            session, event.refund_id, payment.id, RefundStatus.SUCCEEDED
        )
        settled = amount or 0
    elif event.refunded_total is not None:
        already = payment.refunded_amount
        for refund in await repository.pending_refunds(session, payment.id):
            if already + settled + refund.amount > event.refunded_total:
                break
            await repository.settle_refund(session, refund.id, payment.id, RefundStatus.SUCCEEDED)
            settled += refund.amount
    if not settled:
        return InboxOutcome.ALREADY_APPLIED
    await on_refunded(session, redis, payment)
    return InboxOutcome.APPLIED


async def on_refunded(session: AsyncSession, redis: Redis, payment: Payment) -> None:
    """Once everything the order's payment captured is refunded, the order becomes refunded; a
    capture the order did not take (flagged ``order_not_payable``) is refunded alone."""
    refunded, flag = await repository.refund_state(session, payment.id)
    if refunded < payment.amount or flag is PaymentFlag.ORDER_NOT_PAYABLE:
        return
    try:
        await orders.mark_refunded(session, payment.order_id, redis)
    except Conflict as error:
        log.warning("order_not_refundable", order_id=str(payment.order_id), detail=error.detail)


async def complete_dev_payment(
    session: AsyncSession,
    redis: Redis,
    settings: Settings,
    payment_id: uuid.UUID,
    *,
    user_id: uuid.UUID | None,
) -> Payment:
    """Play the dev provider's success callback for a payment (demos, local work); when
    ``user_id`` is given the order must be theirs (404 otherwise)."""
    provider_named(settings, "dev")
    payment = await repository.get_payment(session, payment_id)
    if payment is None or payment.provider != "dev":
        raise NotFound("No such dev payment.", code="payment_not_found")
    await orders.get_order(session, payment.order_id, user_id=user_id)
    event = CallbackEvent(
        event_id=f"dev-complete:{payment.id.hex}",
        event_type="dev.payment_succeeded",
        kind=EventKind.PAYMENT_SUCCEEDED,
        payment_id=payment.id,
        amount=payment.amount,
        currency=payment.currency,
    )
    await apply_event(session, redis, "dev", event)
    await session.refresh(payment)
    return payment


def _announce_failure(session: AsyncSession, payment: Payment) -> None:
    """Record ``payment.failed`` (staff, merchant webhooks) in the callback's transaction."""
    payload = {
        "payment_id": payment.id,
        "order_id": payment.order_id,
        "provider": payment.provider,
        "amount": {"amount": payment.amount, "currency": payment.currency},
    }
    record_event(session, PAYMENT_FAILED_TOPIC, payload)
