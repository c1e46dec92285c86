"""The worker's side of a sale: tickets from the Redis queue become orders, exactly once.

For each queued ticket, one transaction inserts the ticket row (its id is the primary key: a
second run of the same ticket waits for the first, then finds it), counts its units as ordered
on the sale row (a guarded UPDATE: the database's own refusal to oversell), moves the units from
the sale's hold to a new order in ``pending_payment`` and records the outcome with an event for
the buyer. Only after the commit is the ticket settled in Redis and its queue entry
acknowledged: a worker killed anywhere in between leaves the entry pending, and whoever claims
it next finds the row and only finishes the Redis side.

A ticket that cannot become an order (the variant was withdrawn, the buyer's account deleted) is
``rejected`` with the reason, and settling it gives its units back to the sale.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.db import Database
from agora.core.errors import AgoraError, Conflict
from agora.core.money import Money
from agora.core.outbox import record_event
from agora.flashsale import ledger, repository, stock
from agora.flashsale.models import FlashSaleTicket, TicketStatus
from agora.orders import service as orders

BATCH_SIZE = 50
TICKET_ORDERED_TOPIC = "flash_sale.ticket_ordered"
TICKET_REJECTED_TOPIC = "flash_sale.ticket_rejected"
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Settlement:
    """What to record in Redis for a ticket: ``ordered`` + order id, or ``rejected`` + reason."""

    outcome: str
    detail: str

    @classmethod
    def of(cls, ticket: FlashSaleTicket) -> Settlement:
        """The settlement of a ticket row the worker already finished."""
        if ticket.status == TicketStatus.ORDERED:
            return cls("ordered", str(ticket.order_id))
        return cls("rejected", ticket.reason or "rejected")


async def process_queue(
    database: Database, redis: Redis, sale_id: uuid.UUID, consumer: str, *, payment_timeout: int
) -> int:
    """Turn every ticket waiting in the sale's queue into an order; how many were handled."""
    handled = 0
    while entries := await ledger.next_entries_or_sleep(redis, sale_id, consumer, BATCH_SIZE):
        for entry in entries:
            await _handle(database, redis, sale_id, entry, payment_timeout)
        handled += len(entries)
    return handled


async def recover_stale(
    database: Database,
    redis: Redis,
    sale_id: uuid.UUID,
    consumer: str,
    *,
    min_idle_ms: int,
    payment_timeout: int,
) -> int:
    """Take over the tickets a worker received but never finished (it died); how many."""
    recovered = 0
    while entries := await ledger.claim_stale_entries(
        redis, sale_id, consumer, min_idle_ms, BATCH_SIZE
    ):
        for entry in entries:
            await _handle(database, redis, sale_id, entry, payment_timeout)
        recovered += len(entries)
    if recovered:
        log.warning("flash_sale_tickets_recovered", sale_id=str(sale_id), tickets=recovered)
    return recovered


async def _handle(
    database: Database,
    redis: Redis,
    sale_id: uuid.UUID,
    entry: ledger.QueueEntry,
    payment_timeout: int,
) -> None:
    async with database.unit_of_work() as session:
        settlement = await convert_ticket(
            session, redis, sale_id, entry.ticket_id, payment_timeout=payment_timeout
        )
    if settlement is not None:
        await ledger.settle(redis, sale_id, entry.ticket_id, settlement.outcome, settlement.detail)
    await ledger.acknowledge(redis, sale_id, entry)


async def convert_ticket(
    session: AsyncSession,
    redis: Redis,
    sale_id: uuid.UUID,
    ticket_id: uuid.UUID,
    *,
    payment_timeout: int,
) -> Settlement | None:
    """Make the order of a ticket, or reject it, in the caller's transaction (once per ticket).

    Returns what to settle in Redis after the commit; None when Redis no longer knows the ticket.
    """
    ticket = await ledger.read_ticket(redis, sale_id, ticket_id)
    if ticket is None:
        log.warning("flash_sale_ticket_unknown", sale_id=str(sale_id), ticket_id=str(ticket_id))
        return None
    if not await repository.claim_ticket(
        session, ticket_id, sale_id, ticket.buyer_id, ticket.quantity
    ):
        done = await repository.get_ticket(session, ticket_id)
        assert done is not None
        return Settlement.of(done)
    try:
        async with session.begin_nested():
            order_id = await _order_ticket(session, redis, sale_id, ticket, payment_timeout)
    except (AgoraError, IntegrityError) as refusal:
        reason = refusal.instance_code if isinstance(refusal, AgoraError) else "order_refused"
        await repository.finish_ticket(session, ticket_id, TicketStatus.REJECTED, reason=reason)
        _announce(session, TICKET_REJECTED_TOPIC, sale_id, ticket, reason=reason)
        return Settlement("rejected", reason)
    await repository.finish_ticket(session, ticket_id, TicketStatus.ORDERED, order_id=order_id)
    _announce(session, TICKET_ORDERED_TOPIC, sale_id, ticket, order_id=order_id)
    return Settlement("ordered", str(order_id))


async def _order_ticket(
    session: AsyncSession,
    redis: Redis,
    sale_id: uuid.UUID,
    ticket: ledger.QueuedTicket,
    payment_timeout: int,
) -> uuid.UUID:
    if not await repository.hand_units_to_order(session, sale_id, ticket.quantity):
        raise Conflict("The sale has no units left to order.", code="sale_exhausted")
    sale = await repository.get_sale(session, sale_id)
    assert sale is not None
    await stock.hand_over(session, sale, ticket.quantity)
    line = orders.LineRequest(
        variant_id=sale.variant_id,
        quantity=ticket.quantity,
        unit_price=Money(amount=sale.price_amount, currency=sale.currency),
    )
    order = await orders.create_order(
        session,
        ticket.buyer_id,
        [line],
        orders.Checkout(shipping_address={}),
        payment_timeout=payment_timeout,
        redis=redis,
    )
    return order.id


def _announce(
    session: AsyncSession,
    topic: str,
    sale_id: uuid.UUID,
    ticket: ledger.QueuedTicket,
    *,
    order_id: uuid.UUID | None = None,
    reason: str | None = None,
) -> None:
    record_event(
        session,
        topic,
        {
            "sale_id": sale_id,
            "ticket_id": ticket.ticket_id,
            "quantity": ticket.quantity,
            "order_id": order_id,
            "reason": reason,
        },
        user_id=ticket.buyer_id,
    )
