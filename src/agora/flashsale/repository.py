"""Every query on the flash-sale tables."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from agora.catalog.models import ProductVariant
from agora.flashsale.models import FlashSale, FlashSaleBuyer, FlashSaleTicket, TicketStatus
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
    session: AsyncSession, sale_id: uuid.UUID, quantity: int, epoch: int
) -> int | None:
    """Count ``quantity`` more units as ordered, if the sale has them, is not settled and its
    Redis state is still the one of ``epoch`` (the tickets' own); the units the sale has left
    then, or None when it could not.

    The database's own guard against overselling: one conditional UPDATE on the sale row.
    """
    return await session.scalar(
        update(FlashSale)
        .where(
            FlashSale.id == sale_id,
            FlashSale.settled_at.is_(None),
            FlashSale.state_epoch == epoch,
            FlashSale.units_ordered + quantity <= FlashSale.quantity,
        )
        .values(units_ordered=FlashSale.units_ordered + quantity)
        .returning(FlashSale.quantity - FlashSale.units_ordered)
        .execution_options(synchronize_session=False)
    )


async def take_units_back(session: AsyncSession, ticket: FlashSaleTicket, *, keep: bool) -> None:
    """The units of a ticket's cancelled order stop counting as ordered.

    With ``keep`` the sale holds them again for its buyers, and the buyer may buy as many again;
    otherwise they left the sale for regular stock, and its quantity shrinks by as much.
    """
    values = {"units_ordered": FlashSale.units_ordered - ticket.quantity}
    if keep:
        await session.execute(
            update(FlashSaleBuyer)
            .where(
                FlashSaleBuyer.sale_id == ticket.sale_id,
                FlashSaleBuyer.buyer_id == ticket.buyer_id,
            )
            .values(units=FlashSaleBuyer.units - ticket.quantity)
        )
    else:
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


async def add_buyer_units(
    session: AsyncSession, sale_id: uuid.UUID, units_per_buyer: dict[uuid.UUID, int], limit: int
) -> bool:
    """Count more units held by each buyer, in one statement, if every buyer stays within
    ``limit``; False (nothing to keep: the caller rolls back) when one would pass it."""
    if any(units > limit for units in units_per_buyer.values()):
        return False
    statement = insert(FlashSaleBuyer).values(
        [
            {"sale_id": sale_id, "buyer_id": buyer_id, "units": units}
            for buyer_id, units in units_per_buyer.items()
        ]
    )
    written = await session.scalars(
        statement.on_conflict_do_update(
            index_elements=[FlashSaleBuyer.sale_id, FlashSaleBuyer.buyer_id],
            set_={"units": FlashSaleBuyer.units + statement.excluded.units},
            where=FlashSaleBuyer.units + statement.excluded.units <= limit,
        ).returning(FlashSaleBuyer.buyer_id)
    )
    return len(written.all()) == len(units_per_buyer)


async def units_per_buyer(session: AsyncSession, sale_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """The units each buyer holds in a sale (buyers holding none left out)."""
    rows = await session.execute(
        select(FlashSaleBuyer.buyer_id, FlashSaleBuyer.units).where(
            FlashSaleBuyer.sale_id == sale_id, FlashSaleBuyer.units > 0
        )
    )
    return dict(rows.all())


async def next_state_epoch(session: AsyncSession, sale_id: uuid.UUID) -> int:
    """Move a (locked) sale's Redis state on to a new epoch; the new epoch."""
    epoch = await session.scalar(
        update(FlashSale)
        .where(FlashSale.id == sale_id)
        .values(state_epoch=FlashSale.state_epoch + 1)
        .returning(FlashSale.state_epoch)
        .execution_options(synchronize_session=False)
    )
    assert epoch is not None, "the sale row is locked by the caller"
    return int(epoch)


async def set_state_epoch(session: AsyncSession, sale_id: uuid.UUID, epoch: int) -> None:
    """Give a (locked) sale the epoch of the Redis state built for it."""
    await session.execute(
        update(FlashSale)
        .where(FlashSale.id == sale_id)
        .values(state_epoch=epoch)
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
