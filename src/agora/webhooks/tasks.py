"""Celery tasks of webhooks: send one delivery, and the periodic dispatch of due ones.

Both are safe to run twice: a delivery is taken under a lease (a second task finds it not due)
and the dispatch only queues what is due.
"""

from __future__ import annotations

import datetime as dt
import uuid

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.db import Database
from agora.core.jobs import celery_app, worker_runtime
from agora.settings import Settings, get_settings
from agora.webhooks import sender, service
from agora.webhooks.delivery import RetryPolicy

DISPATCH_BATCH = 500


def retry_policy(settings: Settings) -> RetryPolicy:
    """The retry policy configured by ``AGORA_WEBHOOK_*``."""
    return RetryPolicy(
        timeout=settings.webhook_timeout,
        base_delay=settings.webhook_retry_base,
        max_delay=settings.webhook_retry_max_delay,
        retry_window=dt.timedelta(seconds=settings.webhook_retry_window),
        disable_after=dt.timedelta(seconds=settings.webhook_disable_after),
    )


@celery_app.task(name=service.DELIVER_TASK)
def deliver(delivery_id: str) -> str | None:
    """Attempt one delivery if it is due."""
    settings = get_settings()

    async def attempt(database: Database, _: Redis) -> str | None:
        status = await sender.send(
            database,
            uuid.UUID(delivery_id),
            retry_policy(settings),
            allow_private=settings.webhook_allow_private,
        )
        return None if status is None else status.value

    return worker_runtime().run_with_services(attempt)


@celery_app.task(name=service.DISPATCH_TASK)
def dispatch_due() -> int:
    """Queue every delivery whose (next) attempt is due."""

    async def schedule(session: AsyncSession, _: Redis) -> int:
        return await service.schedule_due(session, DISPATCH_BATCH)

    return worker_runtime().run(schedule)
