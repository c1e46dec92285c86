"""Reconciliation and the end of sales: closing the gap between Redis and the database.

Redis decides purchases and PostgreSQL records orders; between the two, a process can die. The
periodic reconciliation repairs what that leaves behind, sale by sale:

1. rebuilds a sale's Redis state that was lost (its after-commit priming failed, or Redis lost
   its data) exactly from PostgreSQL, the record: units left are the quantity minus the units
   ordered and not taken back, each buyer holds what ``flash_sale_buyers`` says, and the tickets
   whose units were taken back are marked so, so replaying their release changes nothing. The
   sale row stays locked meanwhile, so no ticket is ordered between the read and the write, and
   the sale's ``state_epoch`` moves on, so a ticket sold by the lost state is refused;
2. takes over tickets a dead worker received but never finished, and drains the queue;
3. takes back the units of cancelled or unpaid sale orders (database first, then Redis, each
   step idempotent, so a crash between them is finished by the next run);
4. checks the invariant ``remaining + units in queued tickets + units in live orders ==
   quantity`` and reports any difference (a log line and a gauge), for a human to look at.

A sale past its end is closed instead: once no ticket waits, Redis stops selling and the units
the sale still holds go back to regular stock, exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from dataclasses import dataclass

import structlog
from prometheus_client import Counter, Gauge
from redis.asyncio import Redis

from agora.core.db import Database, utcnow
from agora.flashsale import ledger, repository, service, stock, tickets
from agora.flashsale.models import FlashSale

RELEASE_BATCH = 500
MEASURE_ATTEMPTS = 3
MEASURE_PAUSE_S = 0.2
log = structlog.get_logger(__name__)

UNRECONCILED_UNITS = Gauge(
    "agora_flash_sale_unreconciled_units",
    "Sale quantity minus (units left + units in queued tickets + units in live orders)",
    ["sale_id"],
    multiprocess_mode="mostrecent",
)
REPAIRS = Counter(
    "agora_flash_sale_repairs_total",
    "Repairs made by flash-sale reconciliation",
    ["kind"],
)


@dataclass(frozen=True)
class WorkerContext:
    """What reconciliation needs besides the services: who it is and how patient."""

    consumer: str
    claim_idle_ms: int
    payment_timeout: int


@dataclass(frozen=True)
class Report:
    """One sale's units as both sides see them, and what was repaired on the way."""

    sale_id: uuid.UUID
    quantity: int
    remaining: int
    queued_units: int
    ordered_units: int
    recovered_tickets: int = 0
    released_tickets: int = 0
    primed: bool = False

    @property
    def difference(self) -> int:
        """Units unaccounted for (positive: lost; negative: counted twice)."""
        return self.quantity - (self.remaining + self.queued_units + self.ordered_units)


async def reconcile_all(database: Database, redis: Redis, context: WorkerContext) -> list[Report]:
    """Reconcile every running sale and close those past their end; the running sales' reports."""
    async with database.unit_of_work() as session:
        sales = list(await repository.open_sales(session))
    reports = []
    for sale in sales:
        if sale.ends_at <= utcnow():
            await end_sale(database, redis, sale.id, context)
        else:
            reports.append(await reconcile_sale(database, redis, sale, context))
    return reports


async def reconcile_sale(
    database: Database, redis: Redis, sale: FlashSale, context: WorkerContext
) -> Report:
    """Repair one running sale, then measure it."""
    primed = await restore_state(database, redis, sale.id)
    recovered = await tickets.recover_stale(
        database,
        redis,
        sale.id,
        context.consumer,
        min_idle_ms=context.claim_idle_ms,
        payment_timeout=context.payment_timeout,
    )
    REPAIRS.labels("recovered_ticket").inc(recovered)
    await tickets.process_queue(
        database, redis, sale.id, context.consumer, payment_timeout=context.payment_timeout
    )
    released = await release_cancelled(database, redis, sale.id)
    report = await measure(database, redis, sale.id)
    report = dataclasses.replace(
        report, recovered_tickets=recovered, released_tickets=released, primed=primed
    )
    UNRECONCILED_UNITS.labels(str(sale.id)).set(report.difference)
    if report.difference:
        log.error("flash_sale_unreconciled", **_fields(report))
    return report


class _StateExists(Exception):
    """Redis had the sale's state after all (primed meanwhile): the new epoch is rolled back."""


async def restore_state(database: Database, redis: Redis, sale_id: uuid.UUID) -> bool:
    """Rebuild the sale's Redis state from PostgreSQL if Redis lost it; whether it was rebuilt.

    Redis is written while the sale row is locked and before the new epoch commits. Should that
    commit be lost, Redis holds a state built from what the locked row said, under an epoch the
    row does not have yet: the next run gives the row that epoch.
    """
    live_epoch = await ledger.live_epoch(redis, sale_id)
    try:
        async with database.unit_of_work() as session:
            sale = await repository.lock_sale(session, sale_id)
            assert sale is not None
            if live_epoch is not None:
                if live_epoch > sale.state_epoch:
                    log.error("flash_sale_epoch_behind", sale_id=str(sale_id), epoch=live_epoch)
                    await repository.set_state_epoch(session, sale_id, live_epoch)
                return False
            epoch = await repository.next_state_epoch(session, sale_id)
            returned = await repository.tickets_returned_to_sale(session, sale_id)
            recorded = ledger.RecordedState(
                sale=dataclasses.replace(service.live_state(sale), epoch=epoch),
                is_closed=sale.settled_at is not None,
                units_per_buyer=await repository.units_per_buyer(session, sale_id),
                returned_ticket_ids=[ticket.id for ticket in returned],
            )
            if not await ledger.rebuild_sale(redis, recorded, ttl=service.state_ttl(sale)):
                raise _StateExists
    except _StateExists:
        return False
    REPAIRS.labels("rebuilt").inc()
    log.warning("flash_sale_state_rebuilt", sale_id=str(sale_id), epoch=epoch)
    return True


async def measure(database: Database, redis: Redis, sale_id: uuid.UUID) -> Report:
    """The sale's units on both sides. A ticket settled between the two reads is seen twice or
    not at all, so a difference is only believed when it holds over several reads."""
    report = await _read_units(database, redis, sale_id)
    for _ in range(MEASURE_ATTEMPTS - 1):
        if not report.difference:
            break
        await asyncio.sleep(MEASURE_PAUSE_S)
        report = await _read_units(database, redis, sale_id)
    return report


async def _read_units(database: Database, redis: Redis, sale_id: uuid.UUID) -> Report:
    async with database.unit_of_work() as session:
        sale = await repository.get_sale(session, sale_id)
        assert sale is not None
        ordered = await repository.units_in_live_orders(session, sale_id)
    live = await ledger.live_units(redis, sale_id)
    remaining, queued = (live.remaining, live.queued_units) if live else (0, 0)
    return Report(sale_id, sale.quantity, remaining, queued, ordered)


async def release_cancelled(database: Database, redis: Redis, sale_id: uuid.UUID) -> int:
    """Take back the units of the sale's cancelled orders; how many tickets were released now.

    The database side (mark the ticket, hold the units again, stop counting them as ordered) is
    one transaction; the Redis side (units left, the buyer's count) follows, once per ticket, and
    is redone for every released ticket on each run, so a crash between the two heals.
    """
    async with database.unit_of_work() as session:
        cancelled = list(
            await repository.tickets_of_cancelled_orders(session, sale_id, RELEASE_BATCH)
        )
    released = 0
    for ticket in cancelled:
        async with database.unit_of_work() as session:
            if not await repository.mark_units_returned(session, ticket.id):
                continue
            sale = await repository.lock_sale(session, sale_id)
            assert sale is not None
            kept = sale.settled_at is None and await stock.take_back(session, sale, ticket.quantity)
            await repository.take_units_back(session, ticket, keep=kept)
        released += 1
    REPAIRS.labels("released_ticket").inc(released)
    async with database.unit_of_work() as session:
        returned = await repository.tickets_returned_to_sale(session, sale_id)
        sale = await repository.get_sale(session, sale_id)
    assert sale is not None
    for ticket in returned:
        await ledger.release(
            redis,
            sale_id,
            ticket.id,
            ticket.buyer_id,
            ticket.quantity,
            ticket_ttl=service.state_ttl(sale),
        )
    return released


async def end_sale(
    database: Database, redis: Redis, sale_id: uuid.UUID, context: WorkerContext
) -> bool:
    """Close a sale past its end and return its unsold units to regular stock, exactly once.

    False while it cannot be done yet (not ended, or tickets still in the worker's hands): the
    next sweep tries again.
    """
    async with database.unit_of_work() as session:
        sale = await repository.get_sale(session, sale_id)
    if sale is None or sale.settled_at is not None:
        return True
    if sale.ends_at > utcnow():
        return False
    await tickets.recover_stale(
        database,
        redis,
        sale_id,
        context.consumer,
        min_idle_ms=context.claim_idle_ms,
        payment_timeout=context.payment_timeout,
    )
    await tickets.process_queue(
        database, redis, sale_id, context.consumer, payment_timeout=context.payment_timeout
    )
    await release_cancelled(database, redis, sale_id)
    if await ledger.close(redis, sale_id) == "busy":
        return False
    async with database.unit_of_work() as session:
        settled = await repository.settle_sale(session, sale_id)
        if settled is not None:
            await stock.return_unsold(session, settled, settled.units_returned or 0)
            log.info("flash_sale_settled", sale_id=str(sale_id), returned=settled.units_returned)
    with contextlib.suppress(KeyError):
        UNRECONCILED_UNITS.remove(str(sale_id))
    return True


def _fields(report: Report) -> dict[str, object]:
    return {
        "sale_id": str(report.sale_id),
        "quantity": report.quantity,
        "remaining": report.remaining,
        "queued_units": report.queued_units,
        "ordered_units": report.ordered_units,
        "difference": report.difference,
    }
