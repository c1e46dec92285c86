"""Reconciliation: what lost callbacks would have done, asked of the providers with no
transaction open, each answer applied in a short transaction of its own."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.asyncio import Redis

from agora.core.db import Database, utcnow
from agora.core.jobs import defer
from agora.payments import repository
from agora.payments.models import Payment, Refund
from agora.payments.providers import enabled_providers
from agora.payments.providers.base import (
    CallbackEvent,
    EventKind,
    PaymentProvider,
    ProviderError,
    RefundLookup,
    RemoteStatus,
)
from agora.payments.service.callbacks import apply_event
from agora.payments.service.common import SUBMIT_REFUND_TASK, log, lookup
from agora.payments.service.opening import close_open_payment
from agora.settings import Settings

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
        settings, payment.provider, lambda provider: provider.query(lookup(payment))
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
    refund_lookup = RefundLookup(refund.id, refund.provider_reference, lookup(payment))
    remote = await _ask(
        settings, payment.provider, lambda provider: provider.query_refund(refund_lookup)
    )
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
