"""An order bought without a shipping address (a flash-sale purchase) reads as
``"shipping_address": null``, gets its address from the buyer, and cannot ship before."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from agora.core.db import Database
from agora.settings import Settings
from tests.flashsale.support import API, sale_and_buyers
from tests.orders.support import ADDRESS
from tests.support import WorkerProcess, wait_for

pytestmark = pytest.mark.worker


async def _order_of_ticket(
    client: httpx.AsyncClient, sale_id: str, ticket_id: str, headers: dict[str, str]
) -> str:
    async def ordered() -> str | None:
        response = await client.get(
            f"{API}/flash-sales/{sale_id}/tickets/{ticket_id}", headers=headers
        )
        body: dict[str, Any] = response.json()
        assert body["status"] in ("queued", "ordered"), body
        return body.get("order_id")

    order_id: str = await wait_for(ordered, timeout=60)
    return order_id


async def test_a_flash_sale_order_without_address_is_listed_addressed_paid_and_shipped(
    client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    redis: Redis,
    celery_worker: WorkerProcess,
) -> None:
    sale, (buyer, stranger), staff_headers = await sale_and_buyers(
        client, database, settings, redis, quantity=2, buyer_count=2
    )
    bought = await client.post(f"{API}/flash-sales/{sale['id']}/purchase", json={}, headers=buyer)
    assert bought.status_code == 202, bought.text
    order_id = await _order_of_ticket(client, sale["id"], bought.json()["ticket_id"], buyer)
    order_url = f"{API}/orders/{order_id}"

    listed = await client.get(f"{API}/orders", headers=buyer)
    assert listed.status_code == 200, listed.text
    assert [(o["id"], o["shipping_address"]) for o in listed.json()["items"]] == [(order_id, None)]
    read = await client.get(order_url, headers=buyer)
    assert (read.status_code, read.json()["shipping_address"]) == (200, None)

    for status in ("paid", "fulfilled"):
        moved = await client.patch(order_url, json={"status": status}, headers=staff_headers)
        assert moved.status_code == 200, moved.text
    refused = await client.patch(order_url, json={"status": "shipped"}, headers=staff_headers)
    assert (refused.status_code, refused.json()["code"]) == (409, "shipping_address_missing")

    address_url = f"{order_url}/shipping-address"
    assert (await client.put(address_url, json=ADDRESS, headers=stranger)).status_code == 404
    invalid = await client.put(address_url, json={**ADDRESS, "country": "France"}, headers=buyer)
    assert invalid.status_code == 422
    addressed = await client.put(address_url, json=ADDRESS, headers=buyer)
    assert addressed.status_code == 200, addressed.text
    absent = {"line2": None, "region": None, "phone": None}
    assert addressed.json()["shipping_address"] == {**ADDRESS, **absent}

    shipped = await client.patch(order_url, json={"status": "shipped"}, headers=staff_headers)
    assert (shipped.status_code, shipped.json()["status"]) == (200, "shipped")
    too_late = await client.put(address_url, json=ADDRESS, headers=staff_headers)
    assert (too_late.status_code, too_late.json()["code"]) == (409, "order_state_conflict")


async def test_a_cancelled_flash_sale_order_without_address_reads_and_cancels(
    client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    redis: Redis,
    celery_worker: WorkerProcess,
) -> None:
    sale, [buyer], _ = await sale_and_buyers(client, database, settings, redis, quantity=2)
    bought = await client.post(f"{API}/flash-sales/{sale['id']}/purchase", json={}, headers=buyer)
    order_id = await _order_of_ticket(client, sale["id"], bought.json()["ticket_id"], buyer)

    cancelled = await client.post(f"{API}/orders/{order_id}/cancel", headers=buyer)

    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["shipping_address"]) == ("cancelled", None)
