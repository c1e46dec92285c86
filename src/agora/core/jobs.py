"""Background jobs: the Celery app, jobs deferred until commit, and the worker's async runtime.

A job asked for inside a transaction is only published once that transaction commits; a rollback
drops it. So a worker never acts on a row that does not exist (yet, or any more).
Jobs are published by task name, so the API process never imports task modules.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
from celery import Celery
from celery.signals import worker_process_shutdown
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.db import Database, pending
from agora.core.redis import create_redis
from agora.settings import get_settings

T = TypeVar("T")

celery_app = Celery("agora")


@dataclass(frozen=True)
class Job:
    """A task to publish: its name, arguments and an optional delay in seconds."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    countdown: float | None = None


def configure_celery(broker_url: str, queue: str = "agora") -> Celery:
    """Point the Celery app at its broker. Results are not stored: tasks report through the DB."""
    if celery_app.conf.broker_url not in (None, broker_url):
        celery_app._after_fork()  # type: ignore[attr-defined]  # drop the old broker's pool
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
        task_default_queue=queue,
    )
    return celery_app


def defer(session: AsyncSession, name: str, *args: Any, countdown: float | None = None) -> None:
    """Publish task ``name`` with ``args`` once the session's transaction commits."""
    pending(session, _publish_committed_jobs).append(Job(name=name, args=args, countdown=countdown))


def defer_once(session: AsyncSession, name: str) -> None:
    """Publish task ``name`` (no arguments) once the transaction commits, however often asked."""
    jobs: list[Job] = pending(session, _publish_committed_jobs)
    if Job(name=name) not in jobs:
        jobs.append(Job(name=name))


def publish(job: Job) -> None:
    """Publish a job now (blocking I/O to the broker)."""
    celery_app.send_task(job.name, args=job.args, kwargs=job.kwargs, countdown=job.countdown)


async def _publish_committed_jobs(jobs: list[Job]) -> None:
    await anyio.to_thread.run_sync(_publish_all, jobs)


def _publish_all(jobs: list[Job]) -> None:
    for job in jobs:
        publish(job)


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
            self._database = Database(self.database_url, pool_size=5)
        return self._database

    @property
    def redis(self) -> Redis:
        """The process's Redis client, with the same deadlines as the API's."""
        if self._redis is None:
            self._redis = create_redis(self.redis_url, get_settings())
        return self._redis

    def run(self, work: Callable[[AsyncSession, Redis], Awaitable[T]]) -> T:
        """Run ``work`` in one unit of work and return its result (a task's whole body)."""

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
