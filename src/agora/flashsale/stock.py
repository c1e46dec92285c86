"""A sale's units in inventory: set aside at creation, handed to orders, taken back, returned.

The units of a sale are counted as ``reserved`` on its stock level (variant × warehouse), so
regular buyers cannot take them; every change is one guarded statement of inventory (``UPDATE …
WHERE available >= n``, or a signed change the CHECK constraints refuse if it would oversell)
and leaves a line in the stock movement ledger under the sale's id.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.errors import Conflict, NotFound
from agora.flashsale.models import FlashSale
from agora.inventory import repository as inventory
from agora.inventory.models import MovementKind
from agora.inventory.repository import StockChange


async def set_aside(
    session: AsyncSession,
    sale_id: uuid.UUID,
    variant_id: uuid.UUID,
    warehouse_id: uuid.UUID | None,
    quantity: int,
) -> uuid.UUID:
    """Hold ``quantity`` units for a new sale; its warehouse (the default one when None).

    404 ``warehouse_not_found``; 409 ``out_of_stock`` when fewer units are available.
    """
    if warehouse_id is None:
        warehouse_id = await inventory.default_warehouse_id(session)
    elif await inventory.get_warehouse(session, warehouse_id) is None:
        raise NotFound("No such warehouse.", code="warehouse_not_found")
    if await inventory.reserve_units(session, variant_id, warehouse_id, quantity) is None:
        raise Conflict(
            "Not enough units available in this warehouse for the sale.", code="out_of_stock"
        )
    inventory.add_movement(
        session, variant_id, warehouse_id, MovementKind.RESERVATION, quantity, sale_id
    )
    return warehouse_id


async def hand_over(session: AsyncSession, sale: FlashSale, quantity: int) -> None:
    """Stop holding ``quantity`` units for the sale, so that the order made for a ticket reserves
    them in the same transaction (the stock row stays locked until it commits)."""
    await _release(session, sale, quantity)


async def take_back(session: AsyncSession, sale: FlashSale, quantity: int) -> bool:
    """Hold again the units of a cancelled sale order; False if regular buyers took them."""
    held = await inventory.reserve_units(session, sale.variant_id, sale.warehouse_id, quantity)
    if held is None:
        return False
    inventory.add_movement(
        session, sale.variant_id, sale.warehouse_id, MovementKind.RESERVATION, quantity, sale.id
    )
    return True


async def return_unsold(session: AsyncSession, sale: FlashSale, quantity: int) -> None:
    """Give the units a sale still holds back to regular stock when it ends."""
    if quantity > 0:
        await _release(session, sale, quantity)


async def _release(session: AsyncSession, sale: FlashSale, quantity: int) -> None:
    change = StockChange(reserved=-quantity)
    await inventory.change_stock(session, sale.variant_id, sale.warehouse_id, change)
    inventory.add_movement(
        session, sale.variant_id, sale.warehouse_id, MovementKind.RELEASE, quantity, sale.id
    )
