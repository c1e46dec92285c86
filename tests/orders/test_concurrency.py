"""Concurrency claims, with real concurrent HTTP clients against a real multi-process server."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import func, select

from agora.core.db import Database
from agora.orders.models import Order
from agora.settings import Settings
from tests.factories import create_carts, create_users, create_variant, stock_of
from tests.orders.support import ADDRESS
from tests.support import ApiProcess

BUYERS = 200
UNITS = 50
NO_RATE_LIMIT = {"AGORA_RATE_LIMIT_DEFAULT": "1000000/second"}


async def _order_count(database: Database) -> int:
    async with database.unit_of_work() as session:
        return int(await session.scalar(select(func.count()).select_from(Order)) or 0)


@pytest.mark.timeout(180)
async def test_200_buyers_for_50_units_make_exactly_50_orders(
    api_server: Callable[..., ApiProcess], database: Database, settings: Settings
) -> None:
    server = api_server(workers=2, **NO_RATE_LIMIT)
    variant = await create_variant(database, stock=UNITS)
    buyers = await create_users(database, settings, BUYERS)
    carts = await create_carts(database, buyers, {variant: 1})
    limits = httpx.Limits(max_connections=BUYERS, max_keepalive_connections=BUYERS)

    async with httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=120) as http:
        responses = await asyncio.gather(
            *(
                http.post(
                    "/api/v1/orders",
                    json={"cart_id": str(cart_id), "shipping_address": ADDRESS},
                    headers={**buyer.headers, "Idempotency-Key": uuid.uuid4().hex},
                )
                for buyer, cart_id in zip(buyers, carts, strict=True)
            )
        )

    outcomes = Counter(
        (response.status_code, response.json().get("code")) for response in responses
    )
    assert outcomes == {(201, None): UNITS, (409, "out_of_stock"): BUYERS - UNITS}
    stock = await stock_of(database, variant)
    [level] = stock.levels
    assert (level.quantity, level.reserved, stock.available) == (UNITS, UNITS, 0)
    assert await _order_count(database) == UNITS


@pytest.mark.timeout(120)
async def test_50_concurrent_requests_with_one_key_make_one_order(
    api_server: Callable[..., ApiProcess], database: Database, settings: Settings
) -> None:
    server = api_server(workers=2, **NO_RATE_LIMIT)
    variant = await create_variant(database, stock=10)
    [buyer] = await create_users(database, settings, 1)
    [cart_id] = await create_carts(database, [buyer], {variant: 1})
    headers = {**buyer.headers, "Idempotency-Key": "one-checkout"}
    body = {"cart_id": str(cart_id), "shipping_address": ADDRESS}

    async with httpx.AsyncClient(
        base_url=server.base_url, limits=httpx.Limits(max_connections=50), timeout=60
    ) as http:
        responses = await asyncio.gather(
            *(http.post("/api/v1/orders", json=body, headers=headers) for _ in range(50))
        )
        replay = await http.post("/api/v1/orders", json=body, headers=headers)

    created = [response for response in responses if response.status_code == 201]
    refused = [response for response in responses if response.status_code != 201]
    assert created
    assert {response.json()["id"] for response in created} == {replay.json()["id"]}
    assert {(r.status_code, r.json()["code"]) for r in refused} <= {
        (409, "idempotency_key_in_flight")
    }
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert await _order_count(database) == 1
    assert (await stock_of(database, variant)).available == 9
