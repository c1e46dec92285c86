"""Celery shims of payments: submit a refund to its provider, reconcile overdue payments.

Both are safe to run twice: a refund is submitted with its own id as the provider's idempotency
reference and only while unsubmitted; reconciliation applies events through the inbox.
"""

from __future__ import annotations

import uuid

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.jobs import celery_app, worker_runtime
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


@celery_app.task(name=service.RECONCILE_TASK)
def reconcile() -> int:
    """Query the providers about payments pending too long (periodic)."""

    async def run(session: AsyncSession, redis: Redis) -> int:
        return await service.reconcile(session, redis, get_settings())

    return worker_runtime().run(run)
