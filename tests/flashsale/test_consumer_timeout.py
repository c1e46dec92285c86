"""A sale lasting longer than RabbitMQ's ``consumer_timeout`` ends on time without a worker
holding a delayed message: on a RabbitMQ node whose timeout is two seconds, a sale of fifteen
seconds is settled at its end, and the worker's channel is never closed under it."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from agora.core.db import Database
from agora.flashsale.models import FlashSale
from agora.settings import Settings
from tests.flashsale.support import API, published_variant, sale_body, staff
from tests.rabbitmq_node import rabbitmq_node, server_command
from tests.support import ApiProcess, BeatProcess, WorkerProcess, wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.worker]
CONSUMER_TIMEOUT_MS = 2000
SALE_SECONDS = 15


@pytest.fixture
def broker_url() -> Iterator[str]:
    if not os.environ.get("AGORA_TEST_BROKER_URL") or server_command() is None:
        pytest.skip("RabbitMQ tests run in CI (AGORA_TEST_BROKER_URL and rabbitmq-server)")
    with rabbitmq_node(consumer_timeout_ms=CONSUMER_TIMEOUT_MS) as url:
        yield url


@pytest.mark.timeout(240)
async def test_a_sale_longer_than_the_consumer_timeout_ends_without_closing_a_channel(
    broker_url: str,
    api_server: Callable[..., ApiProcess],
    celery_beat: Callable[..., BeatProcess],
    service_env: dict[str, str],
    database: Database,
    settings: Settings,
    redis: Redis,
    tmp_path: Path,
) -> None:
    env = {
        **service_env,
        "AGORA_BROKER_URL": broker_url,
        # Only the sale's own end may settle it here, not the reconciliation backstop.
        "AGORA_FLASH_SALE_RECONCILE_INTERVAL": "3600",
        "AGORA_OUTBOX_RELAY_INTERVAL": "1",
    }
    worker = WorkerProcess(env=env, log_path=tmp_path / "worker.log")
    worker.start()
    try:
        server = api_server(**env)
        celery_beat(**env)
        variant_id = await published_variant(database, redis, stock=5)
        ends_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=SALE_SECONDS)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            created = await http.post(
                f"{API}/flash-sales",
                json=sale_body(variant_id, 3, ends_at=ends_at.isoformat()),
                headers=await staff(database, settings),
            )
        assert created.status_code == 201, created.text

        async def settled() -> bool:
            async with database.unit_of_work() as session:
                sale = await session.get(FlashSale, uuid.UUID(created.json()["id"]))
                return sale is not None and sale.settled_at is not None

        await wait_for(settled, timeout=SALE_SECONDS + 60, interval=0.5)
        worker.check()
    finally:
        worker.stop()
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert "PRECONDITION_FAILED" not in log
    assert "acknowledgement" not in log
