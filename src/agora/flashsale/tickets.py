"""The worker's side of a sale: tickets from the Redis queue become orders, exactly once.

Tickets are read from the queue in batches, and a batch is ordered in one transaction: its ticket
rows in one INSERT, its units counted on the sale row and taken from the sale's hold once, one
order per ticket, one commit, one outbox relay, then one Redis call settles every ticket and
drops its queue entry. If any ticket of the batch cannot be ordered, the batch rolls back and
its tickets go one by one as below, so that refusal only rejects that ticket.

For a single ticket, one transaction inserts the ticket row (its id is the primary key: a
second run of the same ticket waits for the first, then finds it), counts its units as ordered
on the sale row (a guarded UPDATE: the database's own refusal to oversell), moves the units from
the sale's hold to a new order in ``pending_payment`` and records the outcome with an event for
the buyer. Only after the commit is the ticket settled in Redis and its queue entry
acknowledged: a worker killed anywhere in between leaves the entry pending, and whoever claims
it next finds the row and only finishes the Redis side.

A ticket that cannot become an order (the variant was withdrawn, the buyer's account deleted, the
buyer's limit reached in the database's record, the Redis state that sold it lost and rebuilt
since) is ``rejected`` with the reason, and settling it gives its units back to the sale.
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
from agora.flashsale.models import FlashSale, FlashSaleTicket, TicketStatus
from agora.orders import service as orders

BATCH_SIZE = 50
TICKET_ORDERED_TOPIC = "flash_sale.ticket_ordered"
TICKET_REJECTED_TOPIC = "flash_sale.ticket_rejected"
SOLD_OUT_TOPIC = "flash_sale.sold_out"
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
        await _handle_batch(database, redis, sale_id, entries, payment_timeout)
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
        await _handle_batch(database, redis, sale_id, entries, payment_timeout)
        recovered += len(entries)
    if recovered:
        log.warning("flash_sale_tickets_recovered", sale_id=str(sale_id), tickets=recovered)
    return recovered


async def _handle_batch(
    database: Database,
    redis: Redis,
    sale_id: uuid.UUID,
    entries: list[ledger.QueueEntry],
    payment_timeout: int,
) -> None:
    """Order a batch of queue entries, then settle and acknowledge them in one Redis call."""
    queued = await ledger.read_tickets(redis, sale_id, [entry.ticket_id for entry in entries])
    known = [ticket for ticket in queued if ticket is not None]
    for entry, ticket in zip(entries, queued, strict=True):
        if ticket is None:
            log.warning(
                "flash_sale_ticket_unknown", sale_id=str(sale_id), ticket_id=str(entry.ticket_id)
            )
    try:
        async with database.unit_of_work() as session:
            settlements = await _convert_batch(session, redis, sale_id, known, payment_timeout)
    except (AgoraError, IntegrityError):
        settlements = {}
        for ticket in known:
            async with database.unit_of_work() as session:
                settlement = await _convert_queued(
                    session, redis, sale_id, ticket, payment_timeout=payment_timeout
                )
            settlements[ticket.ticket_id] = settlement
    fates: list[ledger.TicketFate] = []
    for entry in entries:
        done = settlements.get(entry.ticket_id)
        outcome, detail = (done.outcome, done.detail) if done else ("", "")
        fates.append((entry.ticket_id, outcome, detail, entry.entry_id))
    await ledger.settle_and_acknowledge(redis, sale_id, fates)


async def _convert_batch(
    session: AsyncSession,
    redis: Redis,
    sale_id: uuid.UUID,
    queued: list[ledger.QueuedTicket],
    payment_timeout: int,
) -> dict[uuid.UUID, Settlement]:
    """Order every ticket of a batch in the caller's transaction, or raise (no partial batch).

    Tickets whose row exists already (their job ran before) are only settled again.
    """
    if not queued:
        return {}
    claimed = await repository.claim_tickets(
        session,
        sale_id,
        [(ticket.ticket_id, ticket.buyer_id, ticket.quantity) for ticket in queued],
    )
    settlements = {
        done.id: Settlement.of(done)
        for done in await repository.get_tickets(
            session, [ticket.ticket_id for ticket in queued if ticket.ticket_id not in claimed]
        )
    }
    fresh = [ticket for ticket in queued if ticket.ticket_id in claimed]
    if not fresh:
        return settlements
    epochs = {ticket.epoch for ticket in fresh}
    if len(epochs) > 1:
        raise Conflict("The batch straddles a rebuilt sale state.", code="ticket_outdated")
    sale = await _take_units(session, sale_id, fresh, epochs.pop())
    order_ids: dict[uuid.UUID, uuid.UUID] = {}
    for ticket in fresh:
        order_ids[ticket.ticket_id] = await _create_order(
            session, redis, sale, ticket, payment_timeout
        )
        _announce(
            session, TICKET_ORDERED_TOPIC, sale_id, ticket, order_id=order_ids[ticket.ticket_id]
        )
    await repository.finish_tickets_ordered(session, order_ids)
    settlements.update(
        (ticket_id, Settlement("ordered", str(order_id)))
        for ticket_id, order_id in order_ids.items()
    )
    return settlements


async def _take_units(
    session: AsyncSession, sale_id: uuid.UUID, queued: list[ledger.QueuedTicket], epoch: int
) -> FlashSale:
    """Count the tickets' units as ordered on the sale and held by their buyers (both guarded:
    the sale's quantity and state epoch, each buyer's limit) and stop holding them for the sale,
    so the orders made next in this transaction reserve them; the sale."""
    quantity = sum(ticket.quantity for ticket in queued)
    left = await repository.hand_units_to_order(session, sale_id, quantity, epoch)
    sale = await repository.get_sale(session, sale_id)
    assert sale is not None
    if left is None:
        if sale.state_epoch != epoch:
            raise Conflict("The sale's state was rebuilt since.", code="ticket_outdated")
        raise Conflict("The sale has no units left to order.", code="sale_exhausted")
    per_buyer: dict[uuid.UUID, int] = {}
    for ticket in queued:
        per_buyer[ticket.buyer_id] = per_buyer.get(ticket.buyer_id, 0) + ticket.quantity
    if not await repository.add_buyer_units(session, sale_id, per_buyer, sale.per_user_limit):
        raise Conflict("The buyer holds as many units as the sale allows.", code="limit_reached")
    if left == 0:
        payload = {"sale_id": sale_id, "variant_id": sale.variant_id, "quantity": sale.quantity}
        record_event(session, SOLD_OUT_TOPIC, payload)
    await stock.hand_over(session, sale, quantity)
    return sale


async def _convert_queued(
    session: AsyncSession,
    redis: Redis,
    sale_id: uuid.UUID,
    ticket: ledger.QueuedTicket,
    *,
    payment_timeout: int,
) -> Settlement:
    ticket_id = ticket.ticket_id
    if not await repository.claim_ticket(
        session, ticket_id, sale_id, ticket.buyer_id, ticket.quantity
    ):
        done = await repository.get_ticket(session, ticket_id)
        assert done is not None
        return Settlement.of(done)
    try:
        async with session.begin_nested():
            sale = await _take_units(session, sale_id, [ticket], ticket.epoch)
            order_id = await _create_order(session, redis, sale, ticket, payment_timeout)
    except (AgoraError, IntegrityError) as refusal:
        reason = refusal.instance_code if isinstance(refusal, AgoraError) else "order_refused"
        await repository.finish_ticket(session, ticket_id, TicketStatus.REJECTED, reason=reason)
        _announce(session, TICKET_REJECTED_TOPIC, sale_id, ticket, reason=reason)
        return Settlement("rejected", reason)
    await repository.finish_ticket(session, ticket_id, TicketStatus.ORDERED, order_id=order_id)
    _announce(session, TICKET_ORDERED_TOPIC, sale_id, ticket, order_id=order_id)
    return Settlement("ordered", str(order_id))


async def _create_order(
    session: AsyncSession,
    redis: Redis,
    sale: FlashSale,
    ticket: ledger.QueuedTicket,
    payment_timeout: int,
) -> uuid.UUID:
    line = orders.LineRequest(
        variant_id=sale.variant_id,
        quantity=ticket.quantity,
        unit_price=Money(amount=sale.price_amount, currency=sale.currency),
    )
    order = await orders.create_order(
        session,
        ticket.buyer_id,
        [line],
        orders.Checkout(shipping_address=ticket.shipping_address),
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
