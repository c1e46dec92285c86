"""Every query on the flash-sale tables."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from agora.catalog.models import ProductVariant
from agora.flashsale.models import FlashSale, FlashSaleTicket, TicketStatus
from agora.orders.models import Order, OrderStatus


async def get_variant(session: AsyncSession, variant_id: uuid.UUID) -> ProductVariant | None:
    """The catalog variant a sale would sell."""
    return await session.get(ProductVariant, variant_id)


def add_sale(session: AsyncSession, sale: FlashSale) -> None:
    """Stage a new sale."""
    session.add(sale)


async def get_sale(session: AsyncSession, sale_id: uuid.UUID) -> FlashSale | None:
    """A sale by id."""
    return await session.get(FlashSale, sale_id)


async def open_sales(session: AsyncSession) -> Sequence[FlashSale]:
    """Sales whose units have not gone back to regular stock yet (scheduled, running, ending)."""
    result = await session.scalars(
        select(FlashSale).where(FlashSale.settled_at.is_(None)).order_by(FlashSale.ends_at)
    )
    return result.all()


async def hand_units_to_order(
    session: AsyncSession, sale_id: uuid.UUID, quantity: int
) -> int | None:
    """Count ``quantity`` more units as ordered, if the sale has them and is not settled; the
    units the sale has left then, or None when it had not enough.

    The database's own guard against overselling: one conditional UPDATE on the sale row.
    """
    return await session.scalar(
        update(FlashSale)
        .where(
            FlashSale.id == sale_id,
            FlashSale.settled_at.is_(None),
            FlashSale.units_ordered + quantity <= FlashSale.quantity,
        )
        .values(units_ordered=FlashSale.units_ordered + quantity)
        .returning(FlashSale.quantity - FlashSale.units_ordered)
        .execution_options(synchronize_session=False)
    )


async def take_units_back(session: AsyncSession, ticket: FlashSaleTicket, *, keep: bool) -> None:
    """The units of a ticket's cancelled order stop counting as ordered.

    With ``keep`` the sale holds them again for its buyers; otherwise they left the sale for
    regular stock, and its quantity shrinks by as much.
    """
    values = {"units_ordered": FlashSale.units_ordered - ticket.quantity}
    if not keep:
        values["quantity"] = FlashSale.quantity - ticket.quantity
    await session.execute(
        update(FlashSale)
        .where(FlashSale.id == ticket.sale_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(FlashSaleTicket)
        .where(FlashSaleTicket.id == ticket.id)
        .values(is_returned_to_sale=keep)
        .execution_options(synchronize_session=False)
    )


async def lock_sale(session: AsyncSession, sale_id: uuid.UUID) -> FlashSale | None:
    """A sale, locked until the transaction ends."""
    return await session.scalar(
        select(FlashSale)
        .where(FlashSale.id == sale_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def settle_sale(session: AsyncSession, sale_id: uuid.UUID) -> FlashSale | None:
    """Mark a sale settled, once; its units still held are those to return. None if done before."""
    return await session.scalar(
        update(FlashSale)
        .where(FlashSale.id == sale_id, FlashSale.settled_at.is_(None))
        .values(settled_at=func.now(), units_returned=FlashSale.quantity - FlashSale.units_ordered)
        .returning(FlashSale)
        .execution_options(populate_existing=True)
    )


async def claim_ticket(
    session: AsyncSession,
    ticket_id: uuid.UUID,
    sale_id: uuid.UUID,
    buyer_id: uuid.UUID,
    quantity: int,
) -> bool:
    """Insert a ticket as queued; False when it exists (its job already ran, or is running).

    A second worker on the same ticket waits here for the first one's transaction, then finds
    the row: the primary key makes the worker's job exactly once per ticket.
    """
    inserted = await session.scalar(
        insert(FlashSaleTicket)
        .values(
            id=ticket_id,
            sale_id=sale_id,
            buyer_id=buyer_id,
            quantity=quantity,
            status=TicketStatus.QUEUED,
        )
        .on_conflict_do_nothing(index_elements=[FlashSaleTicket.id])
        .returning(FlashSaleTicket.id)
    )
    return inserted is not None


async def claim_tickets(
    session: AsyncSession,
    sale_id: uuid.UUID,
    tickets: Sequence[tuple[uuid.UUID, uuid.UUID, int]],
) -> set[uuid.UUID]:
    """Insert several (ticket, buyer, quantity) as queued in one statement; the ids inserted
    (those missing already exist: their job ran before)."""
    inserted = await session.scalars(
        insert(FlashSaleTicket)
        .values(
            [
                {
                    "id": ticket_id,
                    "sale_id": sale_id,
                    "buyer_id": buyer_id,
                    "quantity": quantity,
                    "status": TicketStatus.QUEUED,
                }
                for ticket_id, buyer_id, quantity in tickets
            ]
        )
        .on_conflict_do_nothing(index_elements=[FlashSaleTicket.id])
        .returning(FlashSaleTicket.id)
    )
    return set(inserted.all())


async def get_tickets(
    session: AsyncSession, ticket_ids: Sequence[uuid.UUID]
) -> Sequence[FlashSaleTicket]:
    """Ticket rows by id (fresh from the database); none for an empty list."""
    if not ticket_ids:
        return []
    result = await session.scalars(
        select(FlashSaleTicket)
        .where(FlashSaleTicket.id.in_(ticket_ids))
        .execution_options(populate_existing=True)
    )
    return result.all()


async def finish_tickets_ordered(
    session: AsyncSession, order_ids: dict[uuid.UUID, uuid.UUID]
) -> None:
    """Record the order made for each ticket (ticket id → order id), in one batched statement."""
    await session.execute(
        update(FlashSaleTicket),
        [
            {"id": ticket_id, "status": TicketStatus.ORDERED, "order_id": order_id}
            for ticket_id, order_id in order_ids.items()
        ],
    )


async def get_ticket(session: AsyncSession, ticket_id: uuid.UUID) -> FlashSaleTicket | None:
    """A ticket row by id (fresh from the database)."""
    return await session.scalar(
        select(FlashSaleTicket)
        .where(FlashSaleTicket.id == ticket_id)
        .execution_options(populate_existing=True)
    )


async def finish_ticket(
    session: AsyncSession,
    ticket_id: uuid.UUID,
    status: TicketStatus,
    *,
    order_id: uuid.UUID | None = None,
    reason: str | None = None,
) -> None:
    """Record what became of a ticket."""
    await session.execute(
        update(FlashSaleTicket)
        .where(FlashSaleTicket.id == ticket_id)
        .values(status=status, order_id=order_id, reason=reason)
        .execution_options(synchronize_session=False)
    )


async def tickets_of_cancelled_orders(
    session: AsyncSession, sale_id: uuid.UUID, limit: int
) -> Sequence[FlashSaleTicket]:
    """Ordered tickets whose order was cancelled and whose units were not taken back yet."""
    result = await session.scalars(
        select(FlashSaleTicket)
        .join(Order, Order.id == FlashSaleTicket.order_id)
        .where(
            FlashSaleTicket.sale_id == sale_id,
            FlashSaleTicket.units_returned_at.is_(None),
            Order.status == OrderStatus.CANCELLED,
        )
        .order_by(FlashSaleTicket.id)
        .limit(limit)
    )
    return result.all()


async def mark_units_returned(session: AsyncSession, ticket_id: uuid.UUID) -> bool:
    """Note that a ticket's units were taken back, once; False if already noted."""
    marked = await session.scalar(
        update(FlashSaleTicket)
        .where(FlashSaleTicket.id == ticket_id, FlashSaleTicket.units_returned_at.is_(None))
        .values(units_returned_at=func.now())
        .returning(FlashSaleTicket.id)
        .execution_options(synchronize_session=False)
    )
    return marked is not None


async def tickets_returned_to_sale(
    session: AsyncSession, sale_id: uuid.UUID
) -> Sequence[FlashSaleTicket]:
    """Tickets whose cancelled order's units the sale holds again, to sell once more."""
    result = await session.scalars(
        select(FlashSaleTicket).where(
            FlashSaleTicket.sale_id == sale_id, FlashSaleTicket.is_returned_to_sale.is_(True)
        )
    )
    return result.all()


async def units_in_live_orders(session: AsyncSession, sale_id: uuid.UUID) -> int:
    """Units of the sale's ordered tickets whose units were not taken back."""
    total = await session.scalar(
        select(func.coalesce(func.sum(FlashSaleTicket.quantity), 0)).where(
            FlashSaleTicket.sale_id == sale_id,
            FlashSaleTicket.status == TicketStatus.ORDERED,
            FlashSaleTicket.units_returned_at.is_(None),
        )
    )
    return int(total or 0)
