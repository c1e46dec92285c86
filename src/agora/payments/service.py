"""Payments: create a payment for an order, apply verified callbacks exactly once, refund,
reconcile.

Exactly once, whatever the order or number of deliveries:
1. the callback is verified on its raw body before anything is read from it;
2. the payment it names is row-locked, so callbacks about one payment run one after another;
3. the event is inserted into the inbox with a unique (provider, event id): a redelivery inserts
   nothing and is acknowledged without effect;
4. the payment moves with an atomic ``UPDATE … WHERE status IN (…)``, so two different events
   meaning "paid" (a webhook and the reconciliation, say) still pay the order once, and a
   "failed" arriving after "succeeded" changes nothing.
A callback naming a payment we do not know (yet) writes nothing and is refused, so the provider
resends it later.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import structlog
from prometheus_client import Counter
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.db import Database, utcnow
from agora.core.errors import Conflict, NotFound, ServiceUnavailable, ValidationFailed
from agora.core.jobs import defer
from agora.core.money import Money
from agora.orders import service as orders
from agora.orders.models import OrderStatus
from agora.payments import repository
from agora.payments.models import (
    InboxOutcome,
    Payment,
    PaymentFlag,
    PaymentStatus,
    Refund,
    RefundStatus,
)
from agora.payments.providers import enabled_providers
from agora.payments.providers.base import (
    CallbackEvent,
    CallbackRejected,
    EventKind,
    PaymentLookup,
    PaymentProvider,
    PaymentRequest,
    ProviderError,
    RefundLookup,
    RefundRequest,
    RemoteStatus,
)
from agora.settings import Settings

SUBMIT_REFUND_TASK = "agora.payments.submit_refund"
RECONCILE_TASK = "agora.payments.reconcile"
WEBHOOK_PATH = "/api/v1/payments/webhooks/{provider}"
_RECONCILE_BATCH = 100
_RECONCILE_HORIZON = dt.timedelta(days=3)
_RECONCILED_EVENTS = {
    RemoteStatus.SUCCEEDED: EventKind.PAYMENT_SUCCEEDED,
    RemoteStatus.FAILED: EventKind.PAYMENT_FAILED,
}
_RECONCILED_REFUNDS = {
    RemoteStatus.SUCCEEDED: EventKind.REFUND_SUCCEEDED,
    RemoteStatus.FAILED: EventKind.REFUND_FAILED,
}

_Answer = TypeVar("_Answer")
log = structlog.get_logger(__name__)
CALLBACKS = Counter(
    "agora_payment_callbacks_total", "Payment callbacks received", ["provider", "result"]
)


class CallbackResult(enum.StrEnum):
    """How to answer a callback: acknowledge it, refuse it, or ask for it again later."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    RETRY_LATER = "retry_later"


def provider_named(settings: Settings, name: str) -> PaymentProvider:
    """An enabled provider; ``NotFound`` for one that is not enabled (or does not exist)."""
    provider = enabled_providers(settings).get(name)
    if provider is None:
        raise NotFound(
            f"The payment provider {name!r} is not enabled.", code="provider_not_enabled"
        )
    return provider


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
        await provider.close(_lookup(payment))
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
            await provider.close(_lookup(payment))
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
    """Apply a verified event once: deduplicated by the inbox, serialised by the payment's lock."""
    payment = await repository.lock_payment(
        session, provider, event.payment_id, event.provider_reference
    )
    if payment is None and event.kind is not EventKind.IGNORED:
        log.info("payment_callback_unknown_payment", provider=provider, event_id=event.event_id)
        return CallbackResult.RETRY_LATER
    is_new = await repository.record_inbox_event(
        session,
        provider,
        event.event_id,
        event.event_type,
        payment.id if payment else None,
        dict(event.payload),
        InboxOutcome.APPLIED,
    )
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
    first) is flagged for a refund. ``mark_paid`` waits on the order's row, so by the time it
    returns a competing capture has committed and the check below sees it.
    """
    try:
        await orders.mark_paid(session, payment.order_id)
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
    await _on_refunded(session, redis, payment)
    return InboxOutcome.APPLIED


async def _on_refunded(session: AsyncSession, redis: Redis, payment: Payment) -> None:
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
        _lookup(payment_row),
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
        await _on_refunded(session, redis, payment_row)


async def reconcile(database: Database, redis: Redis, settings: Settings) -> int:
    """Ask the providers about payments pending too long and apply what their callback would
    have; close those whose order can no longer be paid; settle submitted refunds whose callback
    never came; resubmit refunds whose submission was lost. Returns how many payments or
    refunds changed.

    Each payment is settled in its own short transaction, and no transaction is open while a
    provider is asked: a capture locks its order's stock rows, which checkouts wait on.
    """
    now = utcnow()
    overdue_since = now - dt.timedelta(seconds=settings.payment_reconcile_after)
    async with database.unit_of_work() as session:
        payments = await repository.overdue_payments(
            session, overdue_since, now - _RECONCILE_HORIZON, _RECONCILE_BATCH
        )
        refunds = await repository.overdue_submitted_refunds(
            session, overdue_since, _RECONCILE_BATCH
        )
        for refund_id in await repository.unsubmitted_refund_ids(
            session, overdue_since, _RECONCILE_BATCH
        ):
            defer(session, SUBMIT_REFUND_TASK, str(refund_id))
    changed = 0
    for payment in payments:
        changed += await _reconcile_payment(database, redis, settings, payment)
    for refund, paid in refunds:
        changed += await _reconcile_refund(database, redis, settings, refund, paid)
    return changed


async def _reconcile_payment(
    database: Database, redis: Redis, settings: Settings, payment: Payment
) -> int:
    remote = await _ask(
        settings, payment.provider, lambda provider: provider.query(_lookup(payment))
    )
    if remote is None:
        return 0
    kind = _RECONCILED_EVENTS.get(remote.status)
    if kind is None:  # still open: closed if its order can no longer be paid
        return int(await close_open_payment(database, settings, payment.order_id))
    event = CallbackEvent(
        event_id=f"reconcile:{payment.id.hex}:{kind.value}",
        event_type=f"reconcile.{kind.value}",
        kind=kind,
        payment_id=payment.id,
        provider_reference=remote.provider_reference,
        amount=remote.amount,
        currency=remote.currency,
    )
    return await _apply_alone(database, redis, payment.provider, event)


async def _reconcile_refund(
    database: Database, redis: Redis, settings: Settings, refund: Refund, payment: Payment
) -> int:
    lookup = RefundLookup(refund.id, refund.provider_reference, _lookup(payment))
    remote = await _ask(settings, payment.provider, lambda provider: provider.query_refund(lookup))
    kind = _RECONCILED_REFUNDS.get(remote) if remote else None
    if kind is None:
        return 0
    event = CallbackEvent(
        event_id=f"reconcile-refund:{refund.id.hex}:{kind.value}",
        event_type=f"reconcile.{kind.value}",
        kind=kind,
        payment_id=payment.id,
        refund_id=refund.id,
        amount=refund.amount,
        currency=payment.currency,
    )
    return await _apply_alone(database, redis, payment.provider, event)


async def _ask(
    settings: Settings,
    provider_name: str,
    question: Callable[[PaymentProvider], Awaitable[_Answer]],
) -> _Answer | None:
    """A provider's answer to a reconciliation query, or None if it is not enabled or fails (the
    next run asks again)."""
    provider = enabled_providers(settings).get(provider_name)
    if provider is None:
        return None
    try:
        return await question(provider)
    except ProviderError as error:
        log.warning("reconcile_query_failed", provider=provider_name, error=str(error))
        return None


async def _apply_alone(
    database: Database, redis: Redis, provider: str, event: CallbackEvent
) -> int:
    """Apply a reconciled event in a short transaction of its own; 1, the change it counts."""
    async with database.unit_of_work() as session:
        await apply_event(session, redis, provider, event)
    return 1


def notify_url(settings: Settings, provider: str) -> str:
    """The public URL of a provider's webhook, sent with each payment and refund."""
    return settings.public_base_url.rstrip("/") + WEBHOOK_PATH.format(provider=provider)


def _lookup(payment: Payment) -> PaymentLookup:
    return PaymentLookup(payment.id, payment.provider_reference, payment.amount, payment.currency)
