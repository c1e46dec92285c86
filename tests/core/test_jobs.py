"""Jobs are published only after their transaction commits, on Redis and on RabbitMQ."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from kombu import Connection
from redis.asyncio import Redis

from agora.core.db import Database
from agora.core.jobs import configure_celery, defer
from agora.settings import Settings
from agora.worker import PING_KEY_PREFIX
from tests.support import WorkerProcess, wait_for


class Rollback(Exception):
    """Raised to abort a unit of work."""


@pytest.fixture(params=["redis", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
def worker_on_broker(
    request: pytest.FixtureRequest, settings: Settings, service_env: dict[str, str]
) -> Iterator[WorkerProcess]:
    """A real worker consuming from the broker under test, and this process publishing to it."""
    broker_url = settings.broker_url or ""
    if request.param == "rabbitmq":
        broker_url = os.environ.get("AGORA_TEST_BROKER_URL", "")
        if not broker_url:
            pytest.skip("AGORA_TEST_BROKER_URL is not set (RabbitMQ tests run in CI)")
    queue = f"agora-test-{uuid.uuid4().hex}"  # a shared broker may hold other runs' messages
    configure_celery(broker_url, queue)
    env = {**service_env, "AGORA_BROKER_URL": broker_url, "AGORA_TASK_QUEUE": queue}
    worker = WorkerProcess(env=env)
    worker.start()
    yield worker
    worker.stop()
    configure_celery(settings.broker_url or "", settings.task_queue)
    with Connection(broker_url) as connection:
        connection.default_channel.queue_delete(queue)


async def test_job_of_committed_transaction_runs(
    worker_on_broker: WorkerProcess, database: Database, redis: Redis
) -> None:
    token = uuid.uuid4().hex
    async with database.unit_of_work() as session:
        defer(session, "agora.ping", token)

    assert await wait_for(lambda: redis.get(PING_KEY_PREFIX + token)) == b"pong"


async def test_job_of_rolled_back_transaction_never_runs(
    worker_on_broker: WorkerProcess, database: Database, redis: Redis
) -> None:
    dropped, sent_after = uuid.uuid4().hex, uuid.uuid4().hex

    async def defer_then_fail() -> None:
        async with database.unit_of_work() as session:
            defer(session, "agora.ping", dropped)
            raise Rollback

    with pytest.raises(Rollback):
        await defer_then_fail()
    async with database.unit_of_work() as session:
        defer(session, "agora.ping", sent_after)

    await wait_for(lambda: redis.get(PING_KEY_PREFIX + sent_after))
    assert await redis.get(PING_KEY_PREFIX + dropped) is None
