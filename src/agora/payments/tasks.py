"""Celery shims of payments: submit a refund to its provider, close the open payment of a
cancelled order, reconcile overdue payments and refunds.

All are safe to run twice: a refund is submitted with its own id as the provider's idempotency
reference and only while unsubmitted; closing a closed payment changes nothing; reconciliation
applies events through the inbox.
"""

from __future__ import annotations

import uuid

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.db import Database
from agora.core.jobs import celery_app, worker_runtime
from agora.orders.service import ORDER_CANCELLED_TASK
from agora.payments import service
from agora.payments.providers.base import ProviderError
from agora.settings import get_settings

RECONCILE_PAYMENTS_TASK = service.RECONCILE_TASK
_RETRY_COUNTDOWN_S = 30
_MAX_RETRIES = 10


@celery_app.task(name=service.SUBMIT_REFUND_TASK, max_retries=_MAX_RETRIES)
def submit_refund(refund_id: str) -> None:
    """Ask the provider for a pending refund; retried later if the provider is unreachable."""

    async def submit(session: AsyncSession, redis: Redis) -> None:
        await service.submit_refund(session, redis, get_settings(), uuid.UUID(refund_id))

    try:
        worker_runtime().run(submit)
    except ProviderError as error:
        raise submit_refund.retry(exc=error, countdown=_RETRY_COUNTDOWN_S) from error


@celery_app.task(name=ORDER_CANCELLED_TASK)
def close_payment_of_cancelled_order(order_id: str) -> bool:
    """An order was cancelled: its open payment is closed at the provider."""

    async def close(database: Database, _: Redis) -> bool:
        return await service.close_open_payment(database, get_settings(), uuid.UUID(order_id))

    return worker_runtime().run_with_services(close)


@celery_app.task(name=service.RECONCILE_TASK)
def reconcile() -> int:
    """Query the providers about payments and refunds pending too long (periodic); one short
    transaction per payment."""

    async def run(database: Database, redis: Redis) -> int:
        return await service.reconcile(database, redis, get_settings())

    return worker_runtime().run_with_services(run)
