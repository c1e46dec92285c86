"""A request that waits past ``AGORA_DATABASE_POOL_TIMEOUT`` for a pooled connection answers
503 ``temporarily_unavailable`` with ``Retry-After`` and changes nothing; once a connection is
free, the same request succeeds."""

from __future__ import annotations

from sqlalchemy import func, select, text

from agora.core.db import Database
from agora.orders.models import Order
from agora.settings import Settings
from tests.factories import create_user, create_variant
from tests.orders.support import fill_cart, order_cart
from tests.support import assert_temporarily_unavailable, served


async def test_a_request_finding_the_pool_busy_answers_503_and_changes_nothing(
    database: Database, settings: Settings
) -> None:
    buyer = await create_user(database, settings)
    variant = await create_variant(database, stock=5)
    one_connection = {"database_pool_size": 1, "database_pool_timeout": 0.2}
    async with served(settings, **one_connection) as (http, app):
        database_served: Database = app.state.services.database
        cart_id = await fill_cart(http, buyer, {variant: 1})
        async with database_served.engine.connect() as held:  # the pool's only connection
            await held.execute(text("SELECT 1"))
            retry_after = settings.redis_retry_after
            assert_temporarily_unavailable(
                await order_cart(http, buyer, cart_id, key="k-1"), retry_after
            )
            assert_temporarily_unavailable(
                await http.get("/api/v1/orders", headers=buyer.headers), retry_after
            )
        async with database.unit_of_work() as session:
            assert await session.scalar(select(func.count()).select_from(Order)) == 0
        placed = await order_cart(http, buyer, cart_id, key="k-1")
        assert placed.status_code == 201, placed.text
        listed = await http.get("/api/v1/orders", headers=buyer.headers)
        assert [order["id"] for order in listed.json()["items"]] == [placed.json()["id"]]
