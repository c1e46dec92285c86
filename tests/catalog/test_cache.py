"""Cached catalog reads stay fresh: across app instances, and when stock changes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from agora.catalog import service
from agora.settings import Settings
from tests.catalog.support import auth, create_product
from tests.support import served, wait_for


@pytest.fixture
async def second_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client on a second app instance, with its own lifespan, Redis client and local cache."""
    async with served(settings) as (http, _):
        yield http


async def test_a_write_through_one_instance_is_seen_through_the_other(
    client: httpx.AsyncClient, second_client: httpx.AsyncClient, settings: Settings
) -> None:
    product = await create_product(client, settings, "Old Name")
    url = f"/api/v1/products/{product['id']}"
    for _ in range(2):  # the second read is served from the other instance's local level
        assert (await second_client.get(url)).json()["name"] == "Old Name"
    assert (await second_client.get("/api/v1/products?q=old")).json()["items"]

    renamed = await client.patch(url, json={"name": "New Name"}, headers=auth(settings))
    assert renamed.status_code == 200
    assert (await client.get(url)).json()["name"] == "New Name"  # the writer reads its write

    async def other_sees_new_name() -> bool:
        return bool((await second_client.get(url)).json()["name"] == "New Name")

    await wait_for(other_sees_new_name)
    assert (await second_client.get("/api/v1/products?q=old")).json()["items"] == []
    assert (await second_client.get("/api/v1/products?q=new")).json()["items"]


async def test_a_new_slug_is_found_and_the_old_one_is_gone(
    client: httpx.AsyncClient, second_client: httpx.AsyncClient, settings: Settings
) -> None:
    product = await create_product(client, settings, "Before")
    assert (await second_client.get("/api/v1/products/after")).status_code == 404
    await client.patch(
        f"/api/v1/products/{product['id']}", json={"slug": "after"}, headers=auth(settings)
    )

    async def moved() -> bool:
        after = await second_client.get("/api/v1/products/after")
        before = await second_client.get("/api/v1/products/before")
        return after.status_code == 200 and before.status_code == 404

    await wait_for(moved)


async def test_stock_lookup_seam_and_product_invalidation(
    client: httpx.AsyncClient, settings: Settings, redis: Redis
) -> None:
    product = await create_product(client, settings, "Scarce")
    url = f"/api/v1/products/{product['id']}"
    sold_out: set[uuid.UUID] = set()

    async def lookup(_: AsyncSession, variant_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        return set(variant_ids) - sold_out

    service.register_stock_lookup(lookup)
    try:
        assert (await client.get(url)).json()["variants"][0]["in_stock"] is True
        sold_out.add(uuid.UUID(product["variants"][0]["id"]))
        assert (await client.get(url)).json()["variants"][0]["in_stock"] is True  # still cached
        await service.invalidate_product(redis, uuid.UUID(product["id"]))

        async def shows_sold_out() -> bool:
            return (await client.get(url)).json()["variants"][0]["in_stock"] is False

        await wait_for(shows_sold_out)
        listed = (await client.get("/api/v1/products")).json()["items"][0]
        assert listed["variants"][0]["in_stock"] is False
    finally:
        service.register_stock_lookup(None)
