"""The Celery app of the worker and beat processes, and its task shims.

Each task is a thin shim: it takes ids, runs one coroutine of a service inside a unit of work on
the worker process's own event loop, and is safe to run twice.
"""

from __future__ import annotations

import datetime as dt

from celery import Celery
from celery.signals import setup_logging, task_postrun
from prometheus_client import Counter
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from agora.accounts.tasks import PURGE_REFRESH_TOKENS_TASK
from agora.core import idempotency, jobs, outbox
from agora.core.embedded import broker_url_for_redis
from agora.core.jobs import celery_app, configure_celery, worker_runtime
from agora.core.observability import configure_logging
from agora.flashsale import tasks as flashsale_tasks  # noqa: F401 - registers its tasks
from agora.logs import tasks as logs_tasks
from agora.logs.alerts import EVALUATE_TASK as EVALUATE_ALERTS_TASK
from agora.logs.selflog import event_listener
from agora.orders.tasks import EXPIRE_OVERDUE_ORDERS_TASK
from agora.payments.tasks import RECONCILE_PAYMENTS_TASK
from agora.settings import get_settings
from agora.webhooks import service as webhooks
from agora.webhooks import tasks as webhook_tasks  # noqa: F401 - registers its tasks

PING_KEY_PREFIX = "agora:ping:"
PING_TTL_S = 300
IDEMPOTENCY_PURGE_TASK = "agora.idempotency.purge"
OUTBOX_PURGE_TASK = "agora.outbox.purge"
OUTBOX_RETENTION = dt.timedelta(days=7)


TASKS = Counter("agora_worker_tasks_total", "Tasks a worker has run", ["task", "state"])


@task_postrun.connect
def _count_task(task: object = None, state: str | None = None, **_: object) -> None:
    """Count each task run by name and final state (SUCCESS, FAILURE, RETRY ...)."""
    TASKS.labels(getattr(task, "name", "unknown"), state or "UNKNOWN").inc()


@setup_logging.connect
def _use_agora_logging(**_: object) -> None:
    """Worker and beat log through structlog like the API (JSON lines in production)."""
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.wants_json_logs)


def build_celery() -> Celery:
    """The Celery app configured from settings, with every task module and the beat schedule."""
    settings = get_settings()
    broker = settings.broker_url or broker_url_for_redis(settings.redis_url or "")
    app = configure_celery(broker, settings.task_queue)
    outbox.add_relay_listener(event_listener(settings.log_buffer_max_batches))
    app.conf.beat_schedule_filename = str(settings.data_dir / "celerybeat-schedule")
    app.conf.beat_schedule = {
        "relay-outbox": {"task": outbox.RELAY_TASK, "schedule": settings.outbox_relay_interval},
        "relay-due-jobs": {
            "task": jobs.RELAY_JOBS_TASK,
            "schedule": settings.outbox_relay_interval,
        },
        "expire-overdue-orders": {
            "task": EXPIRE_OVERDUE_ORDERS_TASK,
            "schedule": settings.order_expiry_sweep_interval,
        },
        "purge-idempotency-keys": {"task": IDEMPOTENCY_PURGE_TASK, "schedule": 3600.0},
        "purge-relayed-events": {"task": OUTBOX_PURGE_TASK, "schedule": 3600.0},
        "purge-refresh-tokens": {"task": PURGE_REFRESH_TOKENS_TASK, "schedule": 3600.0},
        "reconcile-payments": {
            "task": RECONCILE_PAYMENTS_TASK,
            "schedule": settings.payment_reconcile_interval,
        },
        "dispatch-webhooks": {
            "task": webhooks.DISPATCH_TASK,
            "schedule": settings.webhook_dispatch_interval,
        },
        "evaluate-alerts": {
            "task": EVALUATE_ALERTS_TASK,
            "schedule": settings.alert_evaluation_interval,
        },
        "keep-log-storage": {
            "task": logs_tasks.KEEP_STORAGE_TASK,
            "schedule": settings.log_maintenance_interval,
        },
        "reconcile-flash-sales": {
            "task": "agora.flashsale.reconcile",
            "schedule": settings.flash_sale_reconcile_interval,
        },
    }
    return app


@celery_app.task(name="agora.ping")
def ping(token: str) -> None:
    """Record that a worker received ``token``: proves the publish-after-commit path end to end."""

    async def record(_: AsyncSession, redis: Redis) -> None:
        await redis.set(PING_KEY_PREFIX + token, "pong", ex=PING_TTL_S)

    worker_runtime().run(record)


@celery_app.task(name=outbox.RELAY_TASK)
def relay_outbox() -> int:
    """Publish the outbox events not yet relayed (after a commit, and periodically), and write
    the merchant webhook deliveries they call for."""

    async def relay(session: AsyncSession, redis: Redis) -> int:
        return await outbox.relay_pending(session, redis, consumers=[webhooks.fan_out])

    return worker_runtime().run(relay)


@celery_app.task(name=jobs.RELAY_JOBS_TASK)
def relay_due_jobs() -> int:
    """Publish the jobs whose transaction committed and whose time has come."""
    return worker_runtime().run_with_services(lambda database, _: jobs.relay_due_jobs(database))


@celery_app.task(name=OUTBOX_PURGE_TASK)
def purge_relayed_events() -> int:
    """Forget relayed outbox events and published jobs after their retention period."""

    async def purge(session: AsyncSession, _: Redis) -> int:
        events = await outbox.purge_relayed(session, OUTBOX_RETENTION)
        return events + await jobs.purge_published_jobs(session, OUTBOX_RETENTION)

    return worker_runtime().run(purge)


@celery_app.task(name=IDEMPOTENCY_PURGE_TASK)
def purge_idempotency_keys() -> int:
    """Delete expired idempotency keys."""

    async def purge(session: AsyncSession, _: Redis) -> int:
        return await idempotency.purge_expired(session)

    return worker_runtime().run(purge)


app = build_celery()
