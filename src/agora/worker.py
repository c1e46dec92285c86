"""The Celery app of the worker and beat processes, and its task shims.

Each task is a thin shim: it takes ids, runs one coroutine of a service inside a unit of work on
the worker process's own event loop, and is safe to run twice.
"""

from __future__ import annotations

from celery import Celery
from celery.signals import setup_logging
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.embedded import broker_url_for_redis
from agora.core.jobs import celery_app, configure_celery, worker_runtime
from agora.core.observability import configure_logging
from agora.settings import get_settings

PING_KEY_PREFIX = "agora:ping:"
PING_TTL_S = 300


@setup_logging.connect
def _use_agora_logging(**_: object) -> None:
    """Worker and beat log through structlog like the API (JSON lines in production)."""
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.wants_json_logs)


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
