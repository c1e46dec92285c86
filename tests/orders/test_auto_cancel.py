"""Unpaid orders are cancelled at their deadline by a real worker, even one that was killed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import func, select

from agora.core.db import Database
from agora.orders.models import Order, OrderStatus
from agora.settings import Settings
from tests.factories import create_carts, create_users, create_variant, stock_of
from tests.orders.support import ADDRESS
from tests.support import ApiProcess, BeatProcess, WorkerProcess, wait_for

pytestmark = pytest.mark.worker


async def _place_orders(
    server: ApiProcess, database: Database, settings: Settings, variants: list[uuid.UUID]
) -> list[str]:
    buyers = await create_users(database, settings, len(variants) * 2)
    carts = [
        cart_id
        for index, buyer in enumerate(buyers)
        for cart_id in await create_carts(
            database, [buyer], {variants[index % len(variants)]: 2, variants[0]: 1}
        )
    ]
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
        responses = await asyncio.gather(
            *(
                http.post(
                    "/api/v1/orders",
                    json={"cart_id": str(cart_id), "shipping_address": ADDRESS},
                    headers=buyer.headers,
                )
                for buyer, cart_id in zip(buyers, carts, strict=True)
            )
        )
    assert {response.status_code for response in responses} == {201}
    return [response.json()["id"] for response in responses]


async def _statuses(database: Database) -> set[OrderStatus]:
    async with database.unit_of_work() as session:
        return set(await session.scalars(select(Order.status).distinct()))


async def _all_overdue(database: Database) -> bool:
    async with database.unit_of_work() as session:
        latest = await session.scalar(select(func.max(Order.payment_due_at) <= func.now()))
        return bool(latest)


async def test_the_sweep_cancels_unpaid_orders_past_their_deadline(
    celery_worker: WorkerProcess,
    celery_beat: Callable[..., BeatProcess],
    api_server: Callable[..., ApiProcess],
    database: Database,
    settings: Settings,
) -> None:
    server = api_server(AGORA_ORDER_PAYMENT_TIMEOUT="1")
    variant = await create_variant(database, stock=10)
    celery_beat(AGORA_ORDER_EXPIRY_SWEEP_INTERVAL="1")

    await _place_orders(server, database, settings, [variant])

    async def cancelled() -> bool:
        return await _statuses(database) == {OrderStatus.CANCELLED}

    await wait_for(cancelled, timeout=30)
    assert (await stock_of(database, variant)).available == 10


@pytest.mark.timeout(240)
async def test_orders_expire_after_a_killed_worker_restarts(
    celery_worker: WorkerProcess,
    celery_beat: Callable[..., BeatProcess],
    api_server: Callable[..., ApiProcess],
    database: Database,
    settings: Settings,
) -> None:
    server = api_server(AGORA_ORDER_PAYMENT_TIMEOUT="4")
    variants = [await create_variant(database, stock=20) for _ in range(3)]
    order_ids = await _place_orders(server, database, settings, variants)

    celery_worker.kill()
    await wait_for(lambda: _all_overdue(database), timeout=30)
    assert await _statuses(database) == {OrderStatus.PENDING_PAYMENT}

    # Nothing cancels them while no worker runs; the restarted worker's sweep cancels them all.
    celery_worker.start()
    celery_beat(AGORA_ORDER_EXPIRY_SWEEP_INTERVAL="1")

    async def all_cancelled() -> bool:
        return await _statuses(database) == {OrderStatus.CANCELLED}

    await wait_for(all_cancelled, timeout=90)
    assert len(order_ids) == 6
    for variant in variants:
        stock = await stock_of(database, variant)
        [level] = stock.levels
        assert (level.quantity, level.reserved, level.allocated) == (20, 0, 0)
