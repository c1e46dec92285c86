"""Redis loses every key (FLUSHALL) in the middle of a race of real buyers on a real server,
with a real worker ordering tickets and units already given back by cancelled orders; the state
is rebuilt from PostgreSQL and the race goes on. Afterwards every unit is sold or left exactly
once, and no buyer holds more than the limit, on either side."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import aiohttp
import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from agora.core.db import Database
from agora.core.security import Role
from agora.flashsale import ledger, reconciliation
from agora.flashsale.models import FlashSale, FlashSaleBuyer, FlashSaleTicket, TicketStatus
from agora.flashsale.reconciliation import WorkerContext
from agora.inventory import service as inventory
from agora.settings import Settings
from tests.flashsale.support import (
    API,
    api_server,
    bearer,
    buyers,
    published_variant,
    sale_body,
    staff,
    units_per_buyer_in_live_orders,
)
from tests.support import WorkerProcess, wait_for

pytestmark = pytest.mark.worker
UNITS = 80
LIMIT = 2
BUYERS = 60
CANCELLED = 10
STOCK = 120
FLUSH_AFTER = 15  # tickets accepted in the second round before Redis loses everything
CONTEXT = WorkerContext(consumer="reconciler", claim_idle_ms=0, payment_timeout=900)


class Race:
    """Real buyers on keep-alive connections, each buying one unit at a time until refused.

    Once ``pause_after`` purchases are accepted, a buyer waits for ``go_on`` before asking
    again: requests already in flight still meet the flush, and every buyer still buying
    afterwards meets the lost sale, however fast the race runs on this machine."""

    def __init__(self, http: aiohttp.ClientSession, sale_id: str) -> None:
        self.http, self.sale_id = http, sale_id
        self.answers: Counter[tuple[int, str]] = Counter()
        self.accepted = 0
        self.pause_after: int | None = None
        self.go_on = asyncio.Event()

    async def buy_once(self, headers: dict[str, str]) -> tuple[int, str]:
        async with self.http.post(
            f"{API}/flash-sales/{self.sale_id}/purchase", json={"quantity": 1}, headers=headers
        ) as response:
            body = await response.json(content_type=None)
        answer = (response.status, body.get("code", ""))
        self.answers[answer] += 1
        self.accepted += response.status == 202
        return answer

    async def buy_until_refused(self, headers: dict[str, str]) -> None:
        """Buy until the sale says no; while Redis has lost the sale (404), try again."""
        while True:
            status, code = await self.buy_once(headers)
            if status == 409 and code in ("limit_reached", "sold_out"):
                return
            assert status in (202, 404), (status, code)
            if status == 404:
                await asyncio.sleep(0.05)
            if self.pause_after is not None and self.accepted >= self.pause_after:
                await self.go_on.wait()


async def _sale_row(database: Database, sale_id: str) -> FlashSale:
    async with database.unit_of_work() as session:
        sale = await session.get(FlashSale, uuid.UUID(sale_id))
        assert sale is not None
        return sale


async def _tickets(database: Database, sale_id: str) -> list[FlashSaleTicket]:
    async with database.unit_of_work() as session:
        rows = await session.scalars(
            select(FlashSaleTicket).where(FlashSaleTicket.sale_id == uuid.UUID(sale_id))
        )
        return list(rows)


async def _cancel_some_orders(
    http: aiohttp.ClientSession, database: Database, redis: Redis, settings: Settings, sale_id: str
) -> None:
    """Buyers cancel orders, and reconciliation gives their units back to the sale."""
    tickets = await _tickets(database, sale_id)
    for ticket in tickets[:CANCELLED]:
        async with http.post(
            f"{API}/orders/{ticket.order_id}/cancel",
            headers=bearer(settings, ticket.buyer_id, Role.CUSTOMER),
        ) as cancelled:
            assert cancelled.status == 200, await cancelled.text()
    await reconciliation.reconcile_sale(
        database, redis, await _sale_row(database, sale_id), CONTEXT
    )


@pytest.mark.timeout(300)
async def test_flushall_mid_race_is_rebuilt_from_postgresql_and_the_race_goes_on(
    database: Database,
    settings: Settings,
    redis: Redis,
    service_env: dict[str, str],
    celery_worker: WorkerProcess,
) -> None:
    buyer_headers = await buyers(database, settings, BUYERS)
    variant_id = await published_variant(database, redis, stock=STOCK)
    with api_server(
        service_env,
        rate_limit_flash_sale_ip="1000000/second",
        rate_limit_flash_sale_buyer="1000000/second",
    ) as base_url:
        connector = aiohttp.TCPConnector(limit=BUYERS)
        async with aiohttp.ClientSession(base_url, connector=connector) as http:
            async with http.post(
                f"{API}/flash-sales",
                json=sale_body(variant_id, UNITS, per_user_limit=LIMIT),
                headers=await staff(database, settings),
            ) as created:
                assert created.status == 201, await created.text()
                sale_id: str = (await created.json())["id"]
            race = Race(http, sale_id)

            # First round: one unit each, all ordered; then some buyers cancel theirs.
            await asyncio.gather(*(race.buy_once(headers) for headers in buyer_headers))
            assert race.accepted == BUYERS

            async def all_ordered() -> bool:
                tickets = await _tickets(database, sale_id)
                return sum(t.status == TicketStatus.ORDERED for t in tickets) == BUYERS

            await wait_for(all_ordered, timeout=120, interval=0.2)
            await _cancel_some_orders(http, database, redis, settings, sale_id)

            # Second round: every buyer buys until refused; Redis loses everything meanwhile.
            race.accepted, race.pause_after = 0, FLUSH_AFTER

            async def flush_then_rebuild() -> None:
                await wait_for(lambda: _at_least(race, FLUSH_AFTER), timeout=60, interval=0.001)
                await redis.flushall()
                race.go_on.set()
                # Buyers meet the lost sale (404) before it is rebuilt.
                await wait_for(lambda: _lost_sale_met(race), timeout=60, interval=0.01)
                await asyncio.sleep(0.2)  # and go on meeting it for a while
                sale = await _sale_row(database, sale_id)
                report = await reconciliation.reconcile_sale(database, redis, sale, CONTEXT)
                assert report.primed

            await asyncio.gather(
                flush_then_rebuild(), *(race.buy_until_refused(h) for h in buyer_headers)
            )

    report = await _drain(database, redis, sale_id)
    await _assert_exact(database, redis, sale_id, variant_id, report)


async def _at_least(race: Race, accepted: int) -> bool:
    return race.accepted >= accepted


async def _lost_sale_met(race: Race) -> bool:
    return race.answers[(404, "flash_sale_not_found")] > 0


async def _drain(database: Database, redis: Redis, sale_id: str) -> reconciliation.Report:
    """Reconcile until every ticket the worker can still see is settled."""

    async def settled() -> reconciliation.Report | None:
        sale = await _sale_row(database, sale_id)
        report = await reconciliation.reconcile_sale(database, redis, sale, CONTEXT)
        tickets = await _tickets(database, sale_id)
        waiting = any(ticket.status == TicketStatus.QUEUED for ticket in tickets)
        return report if report.queued_units == 0 and not waiting else None

    report: reconciliation.Report = await wait_for(settled, timeout=120, interval=0.5)
    return report


async def _assert_exact(
    database: Database,
    redis: Redis,
    sale_id: str,
    variant_id: uuid.UUID,
    report: reconciliation.Report,
) -> None:
    sale = await _sale_row(database, sale_id)
    live = await ledger.live_units(redis, uuid.UUID(sale_id))
    assert live is not None
    per_buyer = await units_per_buyer_in_live_orders(database, sale_id)
    sold = sum(per_buyer.values())

    # Every unit is sold or left, once: no unit counted twice, none lost.
    assert report.difference == 0, report
    assert sold + live.remaining == sale.quantity == UNITS
    assert sale.units_ordered == sold
    # No buyer over the limit, and both records of what each buyer holds agree.
    assert max(per_buyer.values()) <= LIMIT
    async with database.unit_of_work() as session:
        recorded = dict(
            (await session.execute(select(FlashSaleBuyer.buyer_id, FlashSaleBuyer.units))).all()
        )
        stock = await inventory.variant_stock(session, variant_id)
    assert {buyer: units for buyer, units in recorded.items() if units} == per_buyer
    in_redis = await redis.hgetall(ledger.buyers_key(sale_id))  # type: ignore[misc]
    assert {uuid.UUID(k.decode()): int(v) for k, v in in_redis.items() if int(v)} == per_buyer
    # Inventory agrees: the sale still holds or has ordered exactly its quantity.
    assert stock.available == STOCK - UNITS
