"""Tickets through the real worker: orders made, tickets rejected, units returned, sales ended."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select, update

from agora.catalog.models import Product, ProductStatus, ProductVariant
from agora.core.db import Database
from agora.flashsale import ledger, reconciliation
from agora.flashsale.models import FlashSale
from agora.flashsale.reconciliation import WorkerContext
from agora.inventory import service as inventory
from agora.orders import service as orders
from agora.orders.models import Order, OrderStatus
from agora.settings import Settings
from tests.flashsale.support import (
    API,
    buyers,
    create_sale,
    published_variant,
    sale_and_buyers,
    sale_body,
    staff,
)
from tests.support import WorkerProcess, wait_for

pytestmark = pytest.mark.worker
CONTEXT = WorkerContext(consumer="test", claim_idle_ms=0, payment_timeout=900)


async def _ticket_when_settled(
    client: httpx.AsyncClient, sale_id: str, ticket_id: str, headers: dict[str, str]
) -> dict[str, Any]:
    async def settled() -> dict[str, Any] | None:
        response = await client.get(
            f"{API}/flash-sales/{sale_id}/tickets/{ticket_id}", headers=headers
        )
        body: dict[str, Any] = response.json()
        return body if body["status"] != "queued" else None

    result: dict[str, Any] = await wait_for(settled, timeout=60)
    return result


async def test_a_ticket_becomes_a_pending_order_at_the_sale_price_and_address(
    client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    celery_worker: WorkerProcess,
    redis: Redis,
) -> None:
    variant_id = await published_variant(database, redis, stock=10)
    sale = await create_sale(client, await staff(database, settings), sale_body(variant_id, 4))
    [buyer] = await buyers(database, settings, 1)

    address = {"name": "Ada", "line1": "1 Main St", "city": "Paris", "postal_code": "75001"}
    address["country"] = "FR"

    bought = await client.post(
        f"{API}/flash-sales/{sale['id']}/purchase",
        json={"shipping_address": address},
        headers=buyer,
    )
    ticket = await _ticket_when_settled(client, sale["id"], bought.json()["ticket_id"], buyer)

    assert ticket["status"] == "ordered", ticket
    async with database.unit_of_work() as session:
        order = await session.scalar(select(Order).where(Order.id == uuid.UUID(ticket["order_id"])))
        assert order is not None
        assert order.status == OrderStatus.PENDING_PAYMENT
        assert order.subtotal_amount == 999
        assert order.shipping_address == address
        assert (await inventory.variant_stock(session, variant_id)).available == 6
        stored = await session.get(FlashSale, uuid.UUID(sale["id"]))
        assert stored is not None
        assert stored.units_ordered == 1


async def test_a_ticket_that_cannot_be_ordered_is_rejected_and_its_units_return(
    client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    celery_worker: WorkerProcess,
    redis: Redis,
) -> None:
    variant_id = await published_variant(database, redis, stock=10)
    sale = await create_sale(client, await staff(database, settings), sale_body(variant_id, 1))
    [buyer] = await buyers(database, settings, 1)
    async with database.unit_of_work() as session:
        product_id = await session.scalar(
            select(ProductVariant.product_id).where(ProductVariant.id == variant_id)
        )
        await session.execute(
            update(Product).where(Product.id == product_id).values(status=ProductStatus.DRAFT)
        )
    url = f"{API}/flash-sales/{sale['id']}/purchase"

    bought = await client.post(url, json={}, headers=buyer)
    ticket = await _ticket_when_settled(client, sale["id"], bought.json()["ticket_id"], buyer)

    assert (ticket["status"], ticket["reason"]) == ("rejected", "variant_unavailable")
    assert (await client.get(f"{API}/flash-sales/{sale['id']}")).json()["remaining"] == 1
    assert (await client.post(url, json={}, headers=buyer)).status_code == 202


async def test_a_cancelled_sale_order_returns_its_units_to_the_sale(
    client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    redis: Redis,
    celery_worker: WorkerProcess,
) -> None:
    variant_id = await published_variant(database, redis, stock=10)
    sale = await create_sale(client, await staff(database, settings), sale_body(variant_id, 1))
    first, second = await buyers(database, settings, 2)
    url = f"{API}/flash-sales/{sale['id']}/purchase"
    bought = await client.post(url, json={}, headers=first)
    ticket = await _ticket_when_settled(client, sale["id"], bought.json()["ticket_id"], first)
    assert (await client.post(url, json={}, headers=second)).json()["code"] == "sold_out"

    async with database.unit_of_work() as session:
        await orders.cancel_order(
            session, uuid.UUID(ticket["order_id"]), reason="changed mind", redis=redis
        )
    async with database.unit_of_work() as session:
        sale_row = await session.get(FlashSale, uuid.UUID(sale["id"]))
    assert sale_row is not None
    report = await reconciliation.reconcile_sale(database, redis, sale_row, CONTEXT)

    assert report.released_tickets == 1
    assert report.difference == 0
    assert (await client.get(f"{API}/flash-sales/{sale['id']}")).json()["remaining"] == 1
    assert (await client.post(url, json={}, headers=second)).status_code == 202
    async with database.unit_of_work() as session:
        assert (await inventory.variant_stock(session, variant_id)).available == 9


async def test_an_ended_sale_returns_its_unsold_units_once(
    client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    redis: Redis,
    celery_worker: WorkerProcess,
) -> None:
    variant_id = await published_variant(database, redis, stock=10)
    sale = await create_sale(client, await staff(database, settings), sale_body(variant_id, 5))
    [buyer] = await buyers(database, settings, 1)
    bought = await client.post(f"{API}/flash-sales/{sale['id']}/purchase", json={}, headers=buyer)
    await _ticket_when_settled(client, sale["id"], bought.json()["ticket_id"], buyer)
    sale_id = uuid.UUID(sale["id"])
    async with database.unit_of_work() as session:
        await session.execute(
            update(FlashSale)
            .where(FlashSale.id == sale_id)
            .values(ends_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )

    assert await reconciliation.end_sale(database, redis, sale_id, CONTEXT)
    assert await reconciliation.end_sale(database, redis, sale_id, CONTEXT)

    async with database.unit_of_work() as session:
        assert (await inventory.variant_stock(session, variant_id)).available == 9
        stored = await session.get(FlashSale, sale_id)
        assert stored is not None
        assert stored.units_returned == 4
        assert stored.settled_at is not None
    refused = await client.post(f"{API}/flash-sales/{sale['id']}/purchase", json={}, headers=buyer)
    assert refused.json()["code"] == "ended"


async def test_the_database_refuses_a_ticket_over_the_buyers_limit_that_redis_forgot(
    client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    redis: Redis,
    celery_worker: WorkerProcess,
) -> None:
    sale, [buyer], _ = await sale_and_buyers(client, database, settings, redis, quantity=5)
    url = f"{API}/flash-sales/{sale['id']}/purchase"
    first = await client.post(url, json={}, headers=buyer)
    assert (await _ticket_when_settled(client, sale["id"], first.json()["ticket_id"], buyer))[
        "status"
    ] == "ordered"
    await redis.delete(ledger.buyers_key(sale["id"]))  # Redis forgets what the buyer holds

    again = await client.post(url, json={}, headers=buyer)
    assert again.status_code == 202
    ticket = await _ticket_when_settled(client, sale["id"], again.json()["ticket_id"], buyer)

    assert (ticket["status"], ticket["reason"]) == ("rejected", "limit_reached")
    async with database.unit_of_work() as session:
        stored = await session.get(FlashSale, uuid.UUID(sale["id"]))
        assert stored is not None
        assert stored.units_ordered == 1
