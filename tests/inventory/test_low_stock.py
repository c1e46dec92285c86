"""``stock.low``: recorded once when a warehouse's available units fall to the threshold."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from agora.core.db import Database
from agora.core.outbox import OutboxEvent
from agora.core.security import Role
from agora.inventory.service import LOW_STOCK_THRESHOLD, LOW_STOCK_TOPIC
from agora.settings import Settings
from tests.factories import create_user, create_variant
from tests.orders.support import buy


async def test_low_stock_is_announced_once_per_fall(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    staff = await create_user(database, settings, Role.STAFF)
    variant_id = await create_variant(database)
    put = await client.put(
        f"/api/v1/variants/{variant_id}/stock",
        json={"quantity": LOW_STOCK_THRESHOLD + 2},
        headers=staff.headers,
    )
    assert put.status_code == 200, put.text
    buyer = await create_user(database, settings)
    await buy(client, buyer, {variant_id: 2})  # falls to the threshold: announced
    await buy(client, buyer, {variant_id: 1})  # stays low: not again
    async with database.unit_of_work() as session:
        low = list(
            await session.scalars(
                select(OutboxEvent.payload).where(OutboxEvent.topic == LOW_STOCK_TOPIC)
            )
        )
    assert [(event["variant_id"], event["available"]) for event in low] == [
        (str(variant_id), LOW_STOCK_THRESHOLD)
    ]
