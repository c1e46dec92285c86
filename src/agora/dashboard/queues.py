"""How much work is waiting: the Celery task queue on the broker, the outbox relay's backlog, the
flash-sale tickets not yet turned into orders and the log platform's ingest buffer.

The broker is asked through Celery's own connection pool (RabbitMQ and Redis alike answer a
passive queue declaration with the message count); the call blocks, so it runs in a thread, and
a broker that does not answer shows as unknown rather than stalling the snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.jobs import celery_app
from agora.dashboard import repository
from agora.logs.buffer import backlog

BROKER_TIMEOUT_S = 1.0


async def queue_depths(
    session: AsyncSession, redis: Redis, task_queue: str, flash_sales: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each queue's name and depth (``None`` when its depth cannot be read now)."""
    return [
        {"name": f"tasks:{task_queue}", "depth": await _task_queue_depth(task_queue)},
        {"name": "outbox", "depth": await repository.unrelayed_events(session)},
        {"name": "flash_sale_tickets", "depth": sum(sale["queued"] for sale in flash_sales)},
        {"name": "log_ingest_batches", "depth": await backlog(redis)},
    ]


async def _task_queue_depth(queue: str) -> int | None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(BROKER_TIMEOUT_S):
            return await asyncio.to_thread(_declared_depth, queue)
    return None


def _declared_depth(queue: str) -> int:
    with celery_app.connection_or_acquire() as connection:
        declared = connection.default_channel.queue_declare(queue=queue, passive=True)
        return int(declared.message_count)
