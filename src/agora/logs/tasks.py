"""Celery tasks of the log platform: storage upkeep, alert evaluation and notification."""

from __future__ import annotations

import uuid

import structlog
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.db import Database
from agora.core.jobs import celery_app, worker_runtime
from agora.logs import alerts, notify, service
from agora.logs.models import AlertState
from agora.settings import get_settings

KEEP_STORAGE_TASK = "agora.logs.keep_storage"
log = structlog.get_logger(__name__)


@celery_app.task(name=KEEP_STORAGE_TASK)
def keep_storage() -> int:
    """Make partitions ahead, drop those past retention, purge old rollups."""

    async def upkeep(database: Database, _: Redis) -> int:
        done = await service.keep_storage(database, get_settings())
        log.info(
            "log_storage_kept", made=len(done.made), dropped=len(done.dropped),
            rollups_purged=done.rollups_purged,
        )  # fmt: skip
        return len(done.dropped)

    return worker_runtime().run_with_services(upkeep)


@celery_app.task(name=alerts.EVALUATE_TASK)
def evaluate_alerts() -> int:
    """Evaluate every alert rule once; returns how many notifications were queued."""

    async def evaluate(session: AsyncSession, _: Redis) -> int:
        return len(await alerts.evaluate_rules(session))

    return worker_runtime().run(evaluate)


@celery_app.task(name=alerts.DELIVER_TASK)
def deliver_alert(episode_id: str, event: str, value: float | None, attempt: int) -> bool:
    """One attempt at an alert notification (the next is queued if it fails)."""

    async def send(session: AsyncSession, _: Redis) -> bool:
        outcome = await notify.deliver(
            session, get_settings(), uuid.UUID(episode_id), AlertState(event), value, attempt
        )
        return outcome.delivered

    return worker_runtime().run(send)
