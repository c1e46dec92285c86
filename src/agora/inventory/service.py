"""Inventory rules: stock levels set by staff, and units held for orders until paid or released.

The life of units held for an order (its ``reference``):

    reserve ──► held ──allocate──► allocated ──ship──► shipped
                 │                     │
                 └──────release────────┴──► released (units available again)

Reserving never oversells: each line is one ``UPDATE … WHERE available >= n RETURNING`` on a
stock level, lines are taken in (variant, warehouse) order so two multi-line orders lock rows in
the same order and cannot deadlock, and the CHECK constraints of ``stock_levels`` are the last
guard. Every other change goes through the reservation rows, locked first, so running one twice
changes nothing the second time.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.errors import Conflict, NotFound
from agora.core.outbox import record_event
from agora.inventory import repository
from agora.inventory.models import MovementKind, ReservationStatus, StockLevel, Warehouse
from agora.inventory.repository import StockChange

AVAILABILITY_TOPIC = "stock.availability_changed"
_HELD = ReservationStatus.HELD
_ALLOCATED = ReservationStatus.ALLOCATED


@dataclass(frozen=True)
class VariantStock:
    """A variant's stock levels and what can still be sold over all warehouses."""

    variant_id: uuid.UUID
    levels: Sequence[StockLevel]

    @property
    def available(self) -> int:
        """Units available for sale."""
        return sum(level.available for level in self.levels)


async def list_warehouses(session: AsyncSession) -> Sequence[Warehouse]:
    """Every warehouse (creating the default one if there is none yet)."""
    await repository.default_warehouse_id(session)
    return await repository.list_warehouses(session)


async def create_warehouse(
    session: AsyncSession, code: str, name: str, *, is_default: bool = False
) -> Warehouse:
    """A new warehouse; 409 ``warehouse_code_taken`` if the code is used."""
    warehouse = await repository.insert_warehouse(session, code, name, is_default=is_default)
    if warehouse is None:
        raise Conflict(f"A warehouse with code {code!r} exists.", code="warehouse_code_taken")
    return warehouse


async def get_warehouse(session: AsyncSession, warehouse_id: uuid.UUID) -> Warehouse:
    """A warehouse; 404 if there is none with this id."""
    warehouse = await repository.get_warehouse(session, warehouse_id)
    if warehouse is None:
        raise NotFound("No such warehouse.", code="warehouse_not_found")
    return warehouse


async def variant_stock(session: AsyncSession, variant_id: uuid.UUID) -> VariantStock:
    """The stock of a variant; 404 if the variant does not exist."""
    if not await repository.variant_exists(session, variant_id):
        raise NotFound("No such variant.", code="variant_not_found")
    return VariantStock(variant_id, await repository.stock_levels(session, variant_id))


async def set_stock(
    session: AsyncSession,
    variant_id: uuid.UUID,
    quantity: int,
    warehouse_id: uuid.UUID | None = None,
) -> VariantStock:
    """Set the units on hand of a variant in a warehouse (the default one when omitted).

    409 ``below_committed_stock`` when fewer units than are reserved or allocated are asked for.
    """
    if not await repository.variant_exists(session, variant_id):
        raise NotFound("No such variant.", code="variant_not_found")
    if warehouse_id is None:
        warehouse_id = await repository.default_warehouse_id(session)
    else:
        await get_warehouse(session, warehouse_id)
    level = await repository.lock_stock_level(session, variant_id, warehouse_id)
    committed = level.reserved + level.allocated
    if quantity < committed:
        raise Conflict(
            f"{committed} units are reserved or allocated; the quantity cannot go below that.",
            code="below_committed_stock",
            committed=committed,
        )
    if quantity != level.quantity:
        await repository.set_quantity(session, level, quantity)
        repository.add_movement(
            session, variant_id, warehouse_id, MovementKind.ADJUSTMENT, quantity - level.quantity
        )
        before = level.available
        await _note_availability(session, variant_id, before, before + quantity - level.quantity)
    return VariantStock(variant_id, await repository.stock_levels(session, variant_id))


async def available_quantities(
    session: AsyncSession, variant_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Units available for sale per variant (0 for a variant without stock)."""
    found = await repository.available_by_variant(session, variant_ids)
    return {variant_id: found.get(variant_id, 0) for variant_id in variant_ids}


async def in_stock_variant_ids(
    session: AsyncSession, variant_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """The variants among ``variant_ids`` with at least one unit available (catalog's lookup)."""
    found = await repository.available_by_variant(session, variant_ids)
    return {variant_id for variant_id, available in found.items() if available > 0}


async def reserve(
    session: AsyncSession, reference_id: uuid.UUID, quantities: Mapping[uuid.UUID, int]
) -> None:
    """Hold units of each variant for ``reference_id``, all or nothing.

    409 ``out_of_stock`` (naming the variant) when a line cannot be held; the caller's transaction
    must then roll back, which releases the lines already held.
    """
    candidates = await repository.warehouses_with_stock(session, quantities)
    for variant_id in sorted(quantities):
        quantity = quantities[variant_id]
        warehouse_id, left = await _reserve_line(
            session, variant_id, quantity, candidates.get(variant_id, [])
        )
        repository.add_reservation(session, reference_id, variant_id, warehouse_id, quantity)
        repository.add_movement(
            session, variant_id, warehouse_id, MovementKind.RESERVATION, quantity, reference_id
        )
        await _note_availability(session, variant_id, left + quantity, left)


async def _reserve_line(
    session: AsyncSession, variant_id: uuid.UUID, quantity: int, warehouses: list[uuid.UUID]
) -> tuple[uuid.UUID, int]:
    """Hold the units in the first warehouse (in key order) that has them all."""
    for warehouse_id in warehouses:
        left = await repository.reserve_units(session, variant_id, warehouse_id, quantity)
        if left is not None:
            return warehouse_id, left
    raise Conflict(
        "Not enough stock left for this item.", code="out_of_stock", variant_id=str(variant_id)
    )


async def allocate(session: AsyncSession, reference_id: uuid.UUID) -> int:
    """Turn held units into allocated ones (the order is paid); returns units moved."""
    return await _move(session, reference_id, [_HELD], ReservationStatus.ALLOCATED)


async def ship(session: AsyncSession, reference_id: uuid.UUID) -> int:
    """Units allocated to a reference leave the warehouse; returns units moved."""
    return await _move(session, reference_id, [_ALLOCATED], ReservationStatus.SHIPPED)


async def release(session: AsyncSession, reference_id: uuid.UUID) -> int:
    """Make units held or allocated to a reference available again; returns units moved."""
    return await _move(session, reference_id, [_HELD, _ALLOCATED], ReservationStatus.RELEASED)


_CHANGES: dict[tuple[ReservationStatus, ReservationStatus], tuple[StockChange, MovementKind]] = {
    (_HELD, ReservationStatus.ALLOCATED): (
        StockChange(reserved=-1, allocated=1),
        MovementKind.ALLOCATION,
    ),
    (_ALLOCATED, ReservationStatus.SHIPPED): (
        StockChange(quantity=-1, allocated=-1),
        MovementKind.SHIPMENT,
    ),
    (_HELD, ReservationStatus.RELEASED): (StockChange(reserved=-1), MovementKind.RELEASE),
    (_ALLOCATED, ReservationStatus.RELEASED): (StockChange(allocated=-1), MovementKind.RELEASE),
}


async def _move(
    session: AsyncSession,
    reference_id: uuid.UUID,
    statuses: list[ReservationStatus],
    new_status: ReservationStatus,
) -> int:
    moved = 0
    taken = await repository.take_reservations(session, reference_id, statuses, new_status)
    for reservation, previous in taken:
        unit_change, kind = _CHANGES[(previous, new_status)]
        units = reservation.quantity
        change = StockChange(
            quantity=unit_change.quantity * units,
            reserved=unit_change.reserved * units,
            allocated=unit_change.allocated * units,
        )
        variant_id, warehouse_id = reservation.variant_id, reservation.warehouse_id
        after = await repository.change_stock(session, variant_id, warehouse_id, change)
        repository.add_movement(session, variant_id, warehouse_id, kind, units, reference_id)
        await _note_availability(session, variant_id, after - change.available, after)
        moved += units
    return moved


async def _note_availability(
    session: AsyncSession, variant_id: uuid.UUID, before: int, after: int
) -> None:
    """When a stock level runs out or comes back, tell listeners whether the variant is in stock.

    Only a change crossing zero can change the variant's availability, so the total over every
    warehouse is read only then.
    """
    if (before > 0) == (after > 0):
        return
    total = (await repository.available_by_variant(session, [variant_id])).get(variant_id, 0)
    if after == 0 and total > 0:
        return  # another warehouse still has units
    record_event(session, AVAILABILITY_TOPIC, {"variant_id": variant_id, "in_stock": total > 0})
