"""Background jobs: the Celery app, jobs kept in the database until published, and the worker's
async runtime.

A job asked for inside a transaction is a row of ``scheduled_jobs`` written in that transaction
(the outbox of jobs): it exists if and only if the change that asked for it committed, and a
rollback drops it. The relay (a task nudged after the commit, and run by beat every
``AGORA_OUTBOX_RELAY_INTERVAL`` seconds) publishes each row once it is due and marks it
published, so a job asked for while the broker is down runs once the broker is back, and a
failure to publish never changes the answer of the request that committed it.

Nothing waits in the broker: a job due later (the end of a flash sale) waits as a row with its
``due_at`` and is published when due. A message held unacknowledged by a worker longer than
RabbitMQ's ``consumer_timeout`` (30 min by default) gets its channel closed, so no message is
ever published with a countdown or ETA beyond ``MAX_BROKER_DELAY_S``.
Jobs are published by task name, so the API process never imports task modules.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import structlog
from celery import Celery
from celery.signals import worker_process_shutdown
from redis.asyncio import Redis
from sqlalchemy import BigInteger, DateTime, Index, String, delete, func, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from agora.core.coalesce import send_coalesced
from agora.core.db import Base, Database, pending
from agora.core.redis import create_redis
from agora.settings import get_settings

T = TypeVar("T")

RELAY_JOBS_TASK = "agora.jobs.relay"
MAX_BROKER_DELAY_S = 300
_RELAY_BATCH = 200
# Publishing gives up quickly: the job is a row, and the relay publishes it later.
_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2}
log = structlog.get_logger(__name__)

celery_app = Celery("agora")


class ScheduledJob(Base):
    """A job asked for by a committed transaction, waiting to be (or already) published."""

    __tablename__ = "scheduled_jobs"
    __table_args__ = (
        Index("ix_scheduled_jobs_due", "due_at", postgresql_where="published_at IS NULL"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    args: Mapped[list[Any]] = mapped_column(JSONB)
    due_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    published_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class Job:
    """A task to publish now: its name and arguments."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


def configure_celery(broker_url: str, queue: str = "agora") -> Celery:
    """Point the Celery app at its broker. Results are not stored: tasks report through the DB."""
    if celery_app.conf.broker_url != broker_url:
        # Drop the pool of the broker used so far (the default one, if a job was published
        # before any configuration).
        celery_app._after_fork()  # type: ignore[attr-defined]
    celery_app.conf.update(
        broker_url=broker_url,
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        enable_utc=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 3600},
        task_publish_retry_policy=_PUBLISH_RETRY_POLICY,
        task_default_queue=queue,
    )
    return celery_app


def defer(
    session: AsyncSession, name: str, *args: Any, not_before: dt.datetime | None = None
) -> None:
    """Run task ``name`` with ``args`` (JSON-able) once the session's transaction commits, or at
    ``not_before`` if that is later: a row in the same transaction, published by the relay."""
    job = ScheduledJob(name=name, args=list(args))
    if not_before is not None:
        job.due_at = not_before
    session.add(job)
    if not_before is None:
        nudge(session, RELAY_JOBS_TASK)


def nudge(session: AsyncSession, name: str) -> None:
    """Publish task ``name`` (no arguments) once the transaction commits, however often asked,
    on a best-effort basis: for a relay whose work is already in rows that a periodic run also
    finds, so a broker outage only delays it."""
    jobs: list[Job] = pending(session, _nudge_committed)
    if Job(name=name) not in jobs:
        jobs.append(Job(name=name))


def publish(job: Job) -> None:
    """Publish a job now (blocking I/O to the broker)."""
    celery_app.send_task(job.name, args=job.args, kwargs=job.kwargs)


async def _nudge_committed(jobs: list[Job]) -> None:
    await send_coalesced(_publish_nudges, [job.name for job in jobs])


async def _publish_nudges(names: list[str]) -> None:
    """Publish a nudge to each relay named (in a thread: Celery's publisher blocks)."""
    try:
        await anyio.to_thread.run_sync(_publish_all, [Job(name) for name in names])
    except Exception as error:  # whatever the transport raises: the work is in rows
        log.warning("broker_publish_failed", tasks=names, error=str(error))


def _publish_all(jobs: list[Job]) -> None:
    for job in jobs:
        publish(job)


async def relay_due_jobs(database: Database) -> int:
    """Publish the due jobs not held by another relay and mark them published, a batch per
    transaction; how many.

    Rows are taken ``FOR UPDATE SKIP LOCKED``, so relays share the work. A crash after
    publishing and before the commit publishes a job again: tasks are safe to run twice. A
    broker error rolls the batch back, for the next run.
    """
    relayed = 0
    while True:
        async with database.unit_of_work() as session:
            due = list(
                await session.scalars(
                    select(ScheduledJob)
                    .where(ScheduledJob.published_at.is_(None), ScheduledJob.due_at <= func.now())
                    .order_by(ScheduledJob.due_at, ScheduledJob.id)
                    .limit(_RELAY_BATCH)
                    .with_for_update(skip_locked=True)
                )
            )
            if due:
                await anyio.to_thread.run_sync(
                    _publish_all, [Job(row.name, tuple(row.args)) for row in due]
                )
                await session.execute(
                    update(ScheduledJob)
                    .where(ScheduledJob.id.in_([row.id for row in due]))
                    .values(published_at=func.now())
                )
        relayed += len(due)
        if len(due) < _RELAY_BATCH:
            return relayed


async def purge_published_jobs(session: AsyncSession, older_than: dt.timedelta) -> int:
    """Forget jobs published more than ``older_than`` ago; how many were deleted."""
    result = await session.execute(
        delete(ScheduledJob).where(ScheduledJob.published_at < func.now() - older_than)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


@dataclass
class WorkerRuntime:
    """What a worker process keeps between tasks: one event loop, one engine, one Redis."""

    database_url: str
    redis_url: str
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    _database: Database | None = None
    _redis: Redis | None = None

    @property
    def database(self) -> Database:
        """The process's database, created on first use inside the runtime's loop."""
        if self._database is None:
            self._database = Database(self.database_url, pool_size=10)
        return self._database

    @property
    def redis(self) -> Redis:
        """The process's Redis client, with the same deadlines as the API's."""
        if self._redis is None:
            self._redis = create_redis(self.redis_url, get_settings())
        return self._redis

    def run(self, work: Callable[[AsyncSession, Redis], Awaitable[T]]) -> T:
        """Run ``work`` in one unit of work and return its result (a task's whole body), once
        committed and its notices sent (``core/coalesce.py``: a worker sends them at once)."""

        async def in_unit_of_work() -> T:
            async with self.database.unit_of_work() as session:
                return await work(session, self.redis)

        return self.loop.run_until_complete(in_unit_of_work())

    def run_with_services(self, work: Callable[[Database, Redis], Awaitable[T]]) -> T:
        """Run ``work`` with the process's database and Redis, for a task that needs several
        units of work (one per item of a batch) rather than one."""

        return self.loop.run_until_complete(work(self.database, self.redis))

    def close(self) -> None:
        """Release pools and the loop when the worker process exits."""
        if self._database is not None:
            self.loop.run_until_complete(self._database.dispose())
        if self._redis is not None:
            self.loop.run_until_complete(self._redis.aclose())
        self.loop.close()


_runtime: WorkerRuntime | None = None


def worker_runtime() -> WorkerRuntime:
    """This worker process's runtime, created on first use (after the pool has forked).

    Domain ``tasks.py`` modules call it: ``worker_runtime().run(coroutine_function)``.
    """
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
