"""The stampede, for real: 2,000 buyers on keep-alive connections race a real ``agora api``
process for 100 units, with a real worker turning tickets into orders, once calmly and once with
the worker SIGKILLed mid-race, inside a batch's transaction."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from redis.asyncio import Redis
from sqlalchemy import column, func, literal, select, text

from agora.core.db import Database
from agora.flashsale import ledger, reconciliation
from agora.flashsale.models import FlashSale, FlashSaleTicket, TicketStatus
from agora.flashsale.reconciliation import WorkerContext
from agora.inventory import service as inventory
from agora.settings import Settings
from tests.flashsale.support import (
    API,
    api_server,
    buyers,
    published_variant,
    sale_body,
    staff,
    units_per_buyer_in_live_orders,
)
from tests.support import WorkerProcess, wait_for

pytestmark = pytest.mark.worker
BUYERS = 2000
UNITS = 100
CONNECTIONS = 200
STOCK = 150


@dataclass
class Race:
    """What the buyers were answered, and the lowest ``remaining`` seen while they raced."""

    tickets: dict[str, str] = field(default_factory=dict)
    statuses: Counter[tuple[int, str]] = field(default_factory=Counter)
    lowest_remaining: int = UNITS


async def _race(
    base_url: str, sale_id: str, buyer_headers: list[dict[str, str]], redis: Redis
) -> Race:
    race = Race()
    done = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(base_url, connector=connector) as session:

        async def buy(headers: dict[str, str]) -> None:
            async with session.post(
                f"{API}/flash-sales/{sale_id}/purchase", json={"quantity": 1}, headers=headers
            ) as response:
                body = await response.json(content_type=None)
                race.statuses[(response.status, body.get("code", ""))] += 1
                if response.status == 202:
                    assert headers["Authorization"] not in race.tickets.values()
                    race.tickets[body["ticket_id"]] = headers["Authorization"]

        async def watch_remaining() -> None:
            while not done.is_set():
                remaining = await redis.hget(ledger.sale_key(sale_id), "remaining")
                race.lowest_remaining = min(race.lowest_remaining, int(remaining or 0))
                await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch_remaining())
        await asyncio.gather(*(buy(headers) for headers in buyer_headers))
        done.set()
        await watcher
    return race


async def _sale(
    database: Database, settings: Settings, base_url: str, redis: Redis
) -> tuple[str, uuid.UUID]:
    variant_id = await published_variant(database, redis, stock=STOCK)
    async with (
        aiohttp.ClientSession(base_url) as session,
        session.post(
            f"{API}/flash-sales",
            json=sale_body(variant_id, UNITS),
            headers=await staff(database, settings),
        ) as response,
    ):
        assert response.status == 201, await response.text()
        sale_id: str = (await response.json())["id"]
    return sale_id, variant_id


async def _ticket_counts(database: Database, sale_id: str) -> Counter[TicketStatus]:
    async with database.unit_of_work() as session:
        rows = await session.execute(
            select(FlashSaleTicket.status, func.count())
            .where(FlashSaleTicket.sale_id == uuid.UUID(sale_id))
            .group_by(FlashSaleTicket.status)
        )
        return Counter(dict(rows.all()))


@contextlib.asynccontextmanager
async def _sale_row_held(database: Database, sale_id: str) -> AsyncIterator[int]:
    """The sale's row locked by a transaction of the test while inside, so that the worker's
    batches wait for it; yields that transaction's backend pid."""
    async with database.engine.connect() as holder:
        sale = select(FlashSale.id).where(FlashSale.id == uuid.UUID(sale_id))
        await holder.execute(sale.with_for_update())
        yield int((await holder.execute(select(func.pg_backend_pid()))).scalar_one())
        await holder.rollback()


async def _waits_on(database: Database, holder: int) -> bool:
    """Whether some backend waits for a lock that backend ``holder`` holds."""
    blocked = select(func.count()).select_from(text("pg_stat_activity"))
    blocked = blocked.where(literal(holder) == func.any_(func.pg_blocking_pids(column("pid"))))
    async with database.unit_of_work() as session:
        return bool(await session.scalar(blocked))


def _assert_race_answers(race: Race) -> None:
    assert len(race.tickets) == UNITS
    assert race.statuses[(202, "")] == UNITS
    assert race.statuses[(409, "sold_out")] == BUYERS - UNITS, race.statuses
    assert race.lowest_remaining >= 0


async def test_two_thousand_buyers_race_for_a_hundred_units(
    database: Database,
    settings: Settings,
    redis: Redis,
    service_env: dict[str, str],
    celery_worker: WorkerProcess,
) -> None:
    buyer_headers = await buyers(database, settings, BUYERS)
    with api_server(service_env, rate_limit_flash_sale_ip="1000000/second") as base_url:
        sale_id, variant_id = await _sale(database, settings, base_url, redis)
        race = await _race(base_url, sale_id, buyer_headers, redis)

    _assert_race_answers(race)

    async def all_ordered() -> bool:
        return (await _ticket_counts(database, sale_id))[TicketStatus.ORDERED] == UNITS

    await wait_for(all_ordered, timeout=120)
    units_per_buyer = await units_per_buyer_in_live_orders(database, sale_id)
    async with database.unit_of_work() as session:
        stock = await inventory.variant_stock(session, variant_id)
        sale = await session.get(FlashSale, uuid.UUID(sale_id))
    assert len(units_per_buyer) == UNITS
    assert set(units_per_buyer.values()) == {1}
    assert stock.available == STOCK - UNITS
    assert all(level.available >= 0 for level in stock.levels)
    assert sale is not None
    assert sale.units_ordered == UNITS


async def test_the_worker_killed_mid_race_loses_no_ticket(
    database: Database,
    settings: Settings,
    redis: Redis,
    service_env: dict[str, str],
    celery_worker: WorkerProcess,
) -> None:
    buyer_headers = await buyers(database, settings, BUYERS)
    with api_server(service_env, rate_limit_flash_sale_ip="1000000/second") as base_url:
        sale_id, variant_id = await _sale(database, settings, base_url, redis)
        async with _sale_row_held(database, sale_id) as holder:

            async def kill_mid_batch() -> None:
                # However fast the worker, it is killed inside a batch's transaction.
                await wait_for(lambda: _waits_on(database, holder), timeout=120, interval=0.01)
                celery_worker.kill()

            killer = asyncio.create_task(kill_mid_batch())
            race = await _race(base_url, sale_id, buyer_headers, redis)
            await killer

    _assert_race_answers(race)
    assert (await _ticket_counts(database, sale_id))[TicketStatus.ORDERED] == 0
    celery_worker.start()
    context = WorkerContext(consumer="reconciler", claim_idle_ms=0, payment_timeout=900)
    async with database.unit_of_work() as session:
        sale = await session.get(FlashSale, uuid.UUID(sale_id))
    assert sale is not None

    async def all_settled() -> reconciliation.Report | None:
        report = await reconciliation.reconcile_sale(database, redis, sale, context)
        counts = await _ticket_counts(database, sale_id)
        settled = counts[TicketStatus.ORDERED] + counts[TicketStatus.REJECTED] == UNITS
        return report if settled and report.queued_units == 0 else None

    report = await wait_for(all_settled, timeout=120, interval=0.5)

    assert report.difference == 0
    counts = await _ticket_counts(database, sale_id)
    assert counts[TicketStatus.QUEUED] == 0
    live = await ledger.live_units(redis, uuid.UUID(sale_id))
    assert live is not None
    assert live.remaining == counts[TicketStatus.REJECTED]
    assert report.ordered_units == counts[TicketStatus.ORDERED]
    async with database.unit_of_work() as session:
        stock = await inventory.variant_stock(session, variant_id)
    assert stock.available == STOCK - UNITS
