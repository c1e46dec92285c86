"""A sale's units in inventory: set aside at creation, handed to orders, taken back, returned.

The units of a sale are counted as ``reserved`` on its stock level (variant × warehouse), so
regular buyers cannot take them; every change goes through inventory's service (one guarded
statement: ``UPDATE … WHERE available >= n``, or a signed change the CHECK constraints refuse if
it would oversell) and leaves a line in the stock movement ledger under the sale's id.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.errors import Conflict
from agora.flashsale.models import FlashSale
from agora.inventory import service as inventory


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
    held_in = await inventory.hold_units(session, sale_id, variant_id, quantity, warehouse_id)
    if held_in is None:
        raise Conflict(
            "Not enough units available in this warehouse for the sale.", code="out_of_stock"
        )
    return held_in


async def hand_over(session: AsyncSession, sale: FlashSale, quantity: int) -> None:
    """Stop holding ``quantity`` units for the sale, so that the order made for a ticket reserves
    them in the same transaction (the stock row stays locked until it commits)."""
    await _release(session, sale, quantity)


async def take_back(session: AsyncSession, sale: FlashSale, quantity: int) -> bool:
    """Hold again the units of a cancelled sale order; False if regular buyers took them."""
    held_in = await inventory.hold_units(
        session, sale.id, sale.variant_id, quantity, sale.warehouse_id
    )
    return held_in is not None


async def return_unsold(session: AsyncSession, sale: FlashSale, quantity: int) -> None:
    """Give the units a sale still holds back to regular stock when it ends."""
    if quantity > 0:
        await _release(session, sale, quantity)


async def _release(session: AsyncSession, sale: FlashSale, quantity: int) -> None:
    await inventory.release_units(session, sale.id, sale.variant_id, sale.warehouse_id, quantity)
