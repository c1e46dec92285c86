"""Agora's own requests and business events reach the log store with service=agora."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from agora.core.db import Database
from agora.core.observability import RequestRecord
from agora.core.outbox import add_relay_listener, record_event, relay_pending
from agora.logs import service
from agora.logs.selflog import RequestLogSink, event_listener
from agora.settings import Settings
from tests.factories import create_user
from tests.logs.support import load_all
from tests.support import served


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client on an app that records its own requests as log lines."""
    async with served(settings, log_self_requests=True) as (http, _):
        yield http


async def test_requests_become_lines_with_their_route_status_and_user(
    client: httpx.AsyncClient, settings: Settings, database: Database, redis: Redis
) -> None:
    buyer = await create_user(database, settings)
    answer = await client.get("/api/v1/me", headers={**buyer.headers, "X-Request-ID": "req-42"})
    assert answer.status_code == 200
    missing = await client.get(f"/api/v1/products/{uuid.uuid4()}")
    assert missing.status_code == 404
    await asyncio.sleep(settings.log_self_flush_interval * 3)  # flushed off the request path
    await load_all(database, redis)
    async with database.sessionmaker() as session:
        page = await service.search(session, "service:agora AND request_id:req-42")
        products = await service.search(session, "service:agora AND status:404")
    (line,) = page.items
    assert (line.method, line.path, line.route, line.status) == (
        "GET",
        "/api/v1/me",
        "/api/v1/me",
        200,
    )
    assert line.attrs == {"user_id": str(buyer.id)}
    assert line.duration_ms is not None
    assert (line.bytes or 0) > 0
    (product,) = products.items
    assert product.route == "/api/v1/products/{id_or_slug}"


async def test_a_full_queue_drops_and_counts_instead_of_waiting() -> None:
    sink = RequestLogSink(max_queued=2, flush_interval=60)
    record = RequestRecord(
        at=0.0, method="GET", path="/x", route="/x", status=200, duration_ms=1.0,
        response_bytes=1, client=None, user_id=None, request_id="r",
    )  # fmt: skip
    before = REGISTRY.get_sample_value("agora_logs_self_dropped_total", {"kind": "request"}) or 0
    for _ in range(5):
        sink(record)
    assert len(sink.queue) == 2
    after = REGISTRY.get_sample_value("agora_logs_self_dropped_total", {"kind": "request"})
    assert after == before + 3


async def test_relayed_business_events_become_lines_with_amounts(
    database: Database, redis: Redis, settings: Settings
) -> None:
    add_relay_listener(event_listener(settings.log_buffer_max_batches))  # as the worker does
    order_id = uuid.uuid4()
    async with database.unit_of_work() as session:
        record_event(
            session, "order.paid",
            {"order_id": order_id, "status": "paid", "total": {"amount": 2599, "currency": "EUR"}},
        )  # fmt: skip
    async with database.unit_of_work() as session:
        assert await relay_pending(session, redis) == 1
    await load_all(database, redis)
    async with database.sessionmaker() as session:
        page = await service.search(session, 'service:agora AND "order.paid"')
        by_amount = await service.search(session, "attrs.amount:>=2000 AND attrs.currency:EUR")
    (line,) = page.items
    assert line.attrs["order_id"] == str(order_id)
    assert (line.attrs["amount"], line.attrs["currency"]) == (2599, "EUR")
    assert [item.id for item in by_amount.items] == [line.id]
