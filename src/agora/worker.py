"""The Celery app of the worker and beat processes, and its task shims.

Each task is a thin shim: it takes ids, runs one coroutine of a service inside a unit of work on
the worker process's own event loop, and is safe to run twice.
"""

from __future__ import annotations

from celery import Celery
from celery.signals import worker_process_shutdown
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.embedded import broker_url_for_redis
from agora.core.jobs import WorkerRuntime, celery_app, configure_celery
from agora.settings import get_settings

PING_KEY_PREFIX = "agora:ping:"
PING_TTL_S = 300
_runtime: WorkerRuntime | None = None


def runtime() -> WorkerRuntime:
    """This worker process's runtime, created on first use (after the pool has forked)."""
    global _runtime
    if _runtime is None:
        settings = get_settings()
        if settings.database_url is None or settings.redis_url is None:
            raise RuntimeError("the worker needs AGORA_DATABASE_URL and AGORA_REDIS_URL")
        _runtime = WorkerRuntime(settings.database_url, settings.redis_url)
    return _runtime


@worker_process_shutdown.connect
def _close_runtime(**_: object) -> None:
    global _runtime
    if _runtime is not None:
        _runtime.close()
        _runtime = None


def build_celery() -> Celery:
    """The Celery app configured from settings, with every task module and the beat schedule."""
    settings = get_settings()
    broker = settings.broker_url or broker_url_for_redis(settings.redis_url or "")
    app = configure_celery(broker)
    app.conf.beat_schedule_filename = str(settings.data_dir / "celerybeat-schedule")
    app.conf.beat_schedule = {
        "reconcile-payments": {
            "task": RECONCILE_PAYMENTS_TASK,
            "schedule": settings.payment_reconcile_interval,
        },
    }
    return app


@celery_app.task(name="agora.ping")
def ping(token: str) -> None:
    """Record that a worker received ``token``: proves the publish-after-commit path end to end."""

    async def record(_: AsyncSession, redis: Redis) -> None:
        await redis.set(PING_KEY_PREFIX + token, "pong", ex=PING_TTL_S)

    runtime().run(record)


# Domain task modules register their tasks on import; they use ``runtime()`` defined above.
from agora.payments.tasks import RECONCILE_PAYMENTS_TASK  # noqa: E402

app = build_celery()
