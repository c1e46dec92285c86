"""The Celery app of the worker and beat processes, and its task shims.

Each task is a thin shim: it takes ids, runs one coroutine of a service inside a unit of work on
the worker process's own event loop, and is safe to run twice.
"""

from __future__ import annotations

from celery import Celery
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.embedded import broker_url_for_redis
from agora.core.jobs import celery_app, configure_celery, worker_runtime
from agora.settings import get_settings

PING_KEY_PREFIX = "agora:ping:"
PING_TTL_S = 300


def build_celery() -> Celery:
    """The Celery app configured from settings, with every task module and the beat schedule."""
    settings = get_settings()
    broker = settings.broker_url or broker_url_for_redis(settings.redis_url or "")
    app = configure_celery(broker)
    app.conf.beat_schedule_filename = str(settings.data_dir / "celerybeat-schedule")
    return app


@celery_app.task(name="agora.ping")
def ping(token: str) -> None:
    """Record that a worker received ``token``: proves the publish-after-commit path end to end."""

    async def record(_: AsyncSession, redis: Redis) -> None:
        await redis.set(PING_KEY_PREFIX + token, "pong", ex=PING_TTL_S)

    worker_runtime().run(record)


app = build_celery()
