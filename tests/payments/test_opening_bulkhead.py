"""Payment openings wait on their provider inside their transaction: a hung provider holds at
most ``AGORA_PAYMENT_OPENINGS_IN_FLIGHT`` of a process's pooled connections, every other request
is still served, and an opening past the cap answers 503 ``payment_openings_busy`` without a
payment (a caller without credentials is refused at once, not queued); once the provider
answers, everything completes and the refused opening succeeds."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import select

from agora.core.db import Database
from agora.orders.models import Order
from agora.payments.models import Payment
from agora.settings import Settings
from tests.factories import create_user
from tests.payments.standin import ProviderStandIn
from tests.payments.support import place_orders
from tests.support import assert_temporarily_unavailable, served, wait_for

# Three connections, two openings at once: one connection is always left to other requests.
CAPPED = {"database_pool_size": 3, "payment_openings_in_flight": 2, "database_pool_timeout": 0.5}


async def test_a_hung_provider_holds_only_the_openings_slots(
    database: Database, settings: Settings, standin: ProviderStandIn
) -> None:
    buyer = await create_user(database, settings)
    orders = await place_orders(database, settings, 3, owner=buyer.id)
    provider_answers = asyncio.Event()
    waiting_at_provider = 0

    async def hang() -> None:
        nonlocal waiting_at_provider
        waiting_at_provider += 1
        await provider_answers.wait()

    async def two_at_provider() -> bool:
        return waiting_at_provider >= 2

    standin.on_request = hang

    async def pay(http: httpx.AsyncClient, order: Order) -> httpx.Response:
        url = f"/api/v1/orders/{order.id}/payments"
        return await http.post(url, json={"provider": "stripe"}, headers=buyer.headers)

    async with served(settings, **CAPPED) as (http, _app):
        opening = {asyncio.create_task(pay(http, order)): order for order in orders}
        await wait_for(two_at_provider)

        try:
            (refused,), hung = await asyncio.wait(opening, return_when=asyncio.FIRST_COMPLETED)
            assert_temporarily_unavailable(
                refused.result(), settings.redis_retry_after, code="payment_openings_busy"
            )
            assert await _payments_of(database, opening[refused]) == []
            listed = await http.get("/api/v1/orders", headers=buyer.headers)
            assert listed.status_code == 200, listed.text
            stranger = await http.post(f"/api/v1/orders/{orders[0].id}/payments", json={})
            assert stranger.status_code == 401, stranger.text  # told at once, not queued
        finally:
            provider_answers.set()
        assert [response.status_code for response in await asyncio.gather(*hung)] == [201, 201]
        retried = await pay(http, opening[refused])
        assert retried.status_code == 201, retried.text
    for order in orders:
        assert len(await _payments_of(database, order)) == 1
    assert waiting_at_provider == 3


async def _payments_of(database: Database, order: Order) -> list[Payment]:
    async with database.sessionmaker() as session:
        return list(await session.scalars(select(Payment).where(Payment.order_id == order.id)))
