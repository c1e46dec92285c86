"""The catalog shows inventory's answer to "in stock?", fresh once a variant runs out or returns."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select

from agora.catalog.models import ProductVariant
from agora.core.db import Database
from agora.settings import Settings
from tests.factories import create_user, create_variant
from tests.orders.support import buy


async def _in_stock(client: httpx.AsyncClient, product_id: uuid.UUID) -> bool:
    response = await client.get(f"/api/v1/products/{product_id}")
    assert response.status_code == 200, response.text
    [variant] = response.json()["variants"]
    in_stock: bool = variant["in_stock"]
    return in_stock


async def test_product_pages_follow_the_last_unit(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    buyer = await create_user(database, settings)
    variant = await create_variant(database, stock=1)
    async with database.unit_of_work() as session:
        product_id = await session.scalar(
            select(ProductVariant.product_id).where(ProductVariant.id == variant)
        )
    assert product_id is not None

    assert await _in_stock(client, product_id) is True
    order = await buy(client, buyer, {variant: 1})
    assert await _in_stock(client, product_id) is False
    await client.post(f"/api/v1/orders/{order['id']}/cancel", headers=buyer.headers)
    assert await _in_stock(client, product_id) is True
