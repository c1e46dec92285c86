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

When a variant runs out or comes back (its available units cross zero), the catalog's cached
documents of its product are invalidated once the transaction commits (they show ``in_stock``),
and a ``stock.availability_changed`` event is recorded. Reserving, releasing and setting stock can
cause that, so they take the Redis client the invalidation goes through; allocating and shipping
never change what is available.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from agora.catalog import service as catalog
from agora.core.coalesce import send_coalesced
from agora.core.db import pending
from agora.core.errors import Conflict, NotFound, ValidationFailed
from agora.core.outbox import record_event
from agora.core.redis import packed, send_packed
from agora.inventory import repository
from agora.inventory.models import MovementKind, ReservationStatus, StockLevel, Warehouse
from agora.inventory.repository import StockChange, WarehouseUnits
from agora.inventory.repository import VariantUnits as VariantUnits  # what variant_units answers

AVAILABILITY_TOPIC = "stock.availability_changed"
LOW_STOCK_TOPIC = "stock.low"
LOW_STOCK_THRESHOLD = 5  # a warehouse's available units at or below this are "low"
MAX_HELD_UNITS = 1_000_000_000  # units of one variant one reservation may hold (an int4 column)
STOCK_CHANGES_CHANNEL = "agora:stock:changes"
log = structlog.get_logger(__name__)
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
    *,
    redis: Redis,
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
        change = WarehouseUnits(variant_id, warehouse_id, quantity - level.quantity)
        await repository.add_movements(session, MovementKind.ADJUSTMENT, [change])
        before = level.available
        after = before + quantity - level.quantity
        _note_low_stock(session, variant_id, warehouse_id, before, after)
        await _note_availability(session, redis, variant_id, before, after)
        _announce_change(session, redis, variant_id)
    return VariantStock(variant_id, await repository.stock_levels(session, variant_id))


async def stock_unstocked_variants(session: AsyncSession, quantity: int, *, redis: Redis) -> int:
    """Give every variant that has no stock anywhere ``quantity`` units in the default warehouse
    (demo data); how many variants were stocked. Safe to run again: stocked ones are kept."""
    warehouse_id = await repository.default_warehouse_id(session)
    unstocked = await repository.unstocked_variants(session)
    stocked = await repository.insert_stock_levels(
        session, warehouse_id, {variant_id: quantity for variant_id, _ in unstocked}
    )
    added = [WarehouseUnits(variant_id, warehouse_id, quantity) for variant_id in sorted(stocked)]
    await repository.add_movements(session, MovementKind.ADJUSTMENT, added)
    for variant_id, product_id in unstocked:
        if variant_id in stocked:
            pending(session, _invalidate_catalog).append((redis, product_id))
    return len(stocked)


async def available_quantities(
    session: AsyncSession, variant_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Units available for sale per variant (0 for a variant without stock)."""
    found = await repository.available_by_variant(session, variant_ids)
    return {variant_id: found.get(variant_id, 0) for variant_id in variant_ids}


async def variant_units(session: AsyncSession, variant_id: uuid.UUID) -> VariantUnits | None:
    """A variant as a cart line shows it and its units available for sale, in one query; None
    for an unknown variant."""
    return await repository.variant_units(session, variant_id)


async def in_stock_variant_ids(
    session: AsyncSession, variant_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """The variants among ``variant_ids`` with at least one unit available (catalog's lookup)."""
    found = await repository.available_by_variant(session, variant_ids)
    return {variant_id for variant_id, available in found.items() if available > 0}


async def reserve(
    session: AsyncSession,
    reference_id: uuid.UUID,
    quantities: Mapping[uuid.UUID, int],
    *,
    redis: Redis,
    warehouse_id: uuid.UUID | None = None,
) -> None:
    """Hold units of each variant for ``reference_id``, all or nothing: in ``warehouse_id`` when
    given (a pickup point), else in the first warehouse that has each line's units.

    409 ``out_of_stock`` (naming the variant) when a line cannot be held; the caller's transaction
    must then roll back, which releases the lines already held.
    """
    too_many = [variant for variant, units in quantities.items() if units > MAX_HELD_UNITS]
    if too_many:
        raise ValidationFailed(
            f"At most {MAX_HELD_UNITS} units of a variant can be held at once.",
            code="quantity_too_large",
            variant_id=str(too_many[0]),
        )
    if warehouse_id is not None:
        await get_warehouse(session, warehouse_id)
    unrecorded = []  # held one at a time, their reservation and movement still to write
    for variant_id in sorted(quantities):
        quantity = quantities[variant_id]
        held = None
        if warehouse_id is None:  # the common case: held and recorded in one statement
            held = await repository.reserve_in_first_warehouse(
                session, reference_id, variant_id, quantity
            )
        if held is None:
            held = await _reserve_line(session, variant_id, quantity, warehouse_id)
            unrecorded.append(WarehouseUnits(variant_id, held[0], quantity))
        taken_from, left = held
        _note_low_stock(session, variant_id, taken_from, left + quantity, left)
        await _note_availability(session, redis, variant_id, left + quantity, left)
        _announce_change(session, redis, variant_id)
    if unrecorded:
        await repository.add_reservations(session, reference_id, unrecorded)
        await repository.add_movements(session, MovementKind.RESERVATION, unrecorded, reference_id)


def quantities_of(lines: Iterable[tuple[uuid.UUID, int]]) -> dict[uuid.UUID, int]:
    """Units per variant of (variant, quantity) lines, a variant named twice counting twice."""
    quantities: dict[uuid.UUID, int] = {}
    for variant_id, quantity in lines:
        quantities[variant_id] = quantities.get(variant_id, 0) + quantity
    return quantities


async def _reserve_line(
    session: AsyncSession, variant_id: uuid.UUID, quantity: int, warehouse_id: uuid.UUID | None
) -> tuple[uuid.UUID, int]:
    """Hold the units in ``warehouse_id``, or else in each warehouse that has any in key order
    until one has them all (the first warehouse that had them was emptied by a concurrent buyer,
    or none had them all); that warehouse and the units left in it."""
    if warehouse_id is not None:
        candidates = [warehouse_id]
    else:
        candidates = await repository.warehouses_with_stock(session, variant_id)
    for candidate in candidates:
        left = await repository.reserve_units(session, variant_id, candidate, quantity)
        if left is not None:
            return candidate, left
    raise Conflict(
        "Not enough stock left for this item.", code="out_of_stock", variant_id=str(variant_id)
    )


async def hold_units(
    session: AsyncSession,
    reference_id: uuid.UUID,
    variant_id: uuid.UUID,
    quantity: int,
    warehouse_id: uuid.UUID | None = None,
) -> uuid.UUID | None:
    """Hold ``quantity`` units of a variant in one warehouse (the default one when None) for
    ``reference_id``, recording the movement; the warehouse, or None if it has fewer available.

    For holders that keep units off regular sale themselves (a flash sale): no reservation row is
    written and no availability change is announced. 404 ``warehouse_not_found``.
    """
    if warehouse_id is None:
        warehouse_id = await repository.default_warehouse_id(session)
    else:
        await get_warehouse(session, warehouse_id)
    if await repository.reserve_units(session, variant_id, warehouse_id, quantity) is None:
        return None
    units = [WarehouseUnits(variant_id, warehouse_id, quantity)]
    await repository.add_movements(session, MovementKind.RESERVATION, units, reference_id)
    return warehouse_id


async def release_units(
    session: AsyncSession,
    reference_id: uuid.UUID,
    variant_id: uuid.UUID,
    warehouse_id: uuid.UUID,
    quantity: int,
) -> None:
    """Stop holding ``quantity`` units that ``hold_units`` held for ``reference_id``, recording
    the movement (409 ``insufficient_stock`` if fewer are held)."""
    change = StockChange(reserved=-quantity)
    await repository.change_stock(session, variant_id, warehouse_id, change)
    units = [WarehouseUnits(variant_id, warehouse_id, quantity)]
    await repository.add_movements(session, MovementKind.RELEASE, units, reference_id)


async def allocate(session: AsyncSession, reference_id: uuid.UUID) -> int:
    """Turn held units into allocated ones (the order is paid); returns units moved."""
    moves = await _move(session, reference_id, [_HELD], ReservationStatus.ALLOCATED)
    return sum(move.units for move in moves)


async def ship(session: AsyncSession, reference_id: uuid.UUID) -> int:
    """Units allocated to a reference leave the warehouse; returns units moved."""
    moves = await _move(session, reference_id, [_ALLOCATED], ReservationStatus.SHIPPED)
    return sum(move.units for move in moves)


async def release(session: AsyncSession, reference_id: uuid.UUID, *, redis: Redis) -> int:
    """Make units held or allocated to a reference available again; returns units moved."""
    moves = await _move(session, reference_id, [_HELD, _ALLOCATED], ReservationStatus.RELEASED)
    for move in moves:
        await _note_availability(session, redis, move.variant_id, move.before, move.after)
        _announce_change(session, redis, move.variant_id)
    return sum(move.units for move in moves)


@dataclass(frozen=True)
class _Move:
    """Units of a variant that changed state, and its available units before and after."""

    variant_id: uuid.UUID
    units: int
    before: int
    after: int


# What a reservation's move does to its stock level, per unit, by (previous, new) status.
_CHANGES: dict[tuple[ReservationStatus, ReservationStatus], StockChange] = {
    (_HELD, ReservationStatus.ALLOCATED): StockChange(reserved=-1, allocated=1),
    (_ALLOCATED, ReservationStatus.SHIPPED): StockChange(quantity=-1, allocated=-1),
    (_HELD, ReservationStatus.RELEASED): StockChange(reserved=-1),
    (_ALLOCATED, ReservationStatus.RELEASED): StockChange(allocated=-1),
}
# The ledger line a move to each status writes, whatever the status it left.
_LEDGER_KINDS = {
    ReservationStatus.ALLOCATED: MovementKind.ALLOCATION,
    ReservationStatus.SHIPPED: MovementKind.SHIPMENT,
    ReservationStatus.RELEASED: MovementKind.RELEASE,
}


async def _move(
    session: AsyncSession,
    reference_id: uuid.UUID,
    statuses: list[ReservationStatus],
    new_status: ReservationStatus,
) -> list[_Move]:
    """Move a reference's reservations (writing their ledger lines in the same statement), then
    their stock levels, one by one in primary-key order."""
    moves = []
    kind = _LEDGER_KINDS[new_status]
    taken = await repository.take_reservations(session, reference_id, statuses, new_status, kind)
    for reservation, previous in taken:
        unit_change = _CHANGES[(previous, new_status)]
        units = reservation.quantity
        change = StockChange(
            quantity=unit_change.quantity * units,
            reserved=unit_change.reserved * units,
            allocated=unit_change.allocated * units,
        )
        variant_id, warehouse_id = reservation.variant_id, reservation.warehouse_id
        after = await repository.change_stock(session, variant_id, warehouse_id, change)
        moves.append(_Move(variant_id, units, after - change.available, after))
    return moves


async def _note_availability(
    session: AsyncSession, redis: Redis, variant_id: uuid.UUID, before: int, after: int
) -> None:
    """When a stock level runs out or comes back, tell listeners whether the variant is in stock
    and have the catalog drop its product's cached documents once this transaction commits.

    Only a change crossing zero can change the variant's availability, so the total over every
    warehouse is read only then.
    """
    if (before > 0) == (after > 0):
        return
    total = (await repository.available_by_variant(session, [variant_id])).get(variant_id, 0)
    if after == 0 and total > 0:
        return  # another warehouse still has units
    record_event(session, AVAILABILITY_TOPIC, {"variant_id": variant_id, "in_stock": total > 0})
    product_id = await repository.product_of_variant(session, variant_id)
    pending(session, _invalidate_catalog).append((redis, product_id))


async def _invalidate_catalog(invalidations: list[tuple[Redis, uuid.UUID]]) -> None:
    """Drop the cached catalog documents of products whose availability changed (committed)."""
    done: set[tuple[int, uuid.UUID]] = set()
    for redis, product_id in invalidations:
        if (id(redis), product_id) not in done:
            done.add((id(redis), product_id))
            await catalog.invalidate_product(redis, product_id)


def _note_low_stock(
    session: AsyncSession, variant_id: uuid.UUID, warehouse_id: uuid.UUID, before: int, after: int
) -> None:
    """Record ``stock.low`` when a warehouse's available units fall to the threshold or below
    (once per fall: a level that stays low is not announced again)."""
    if before > LOW_STOCK_THRESHOLD >= after:
        payload = {"variant_id": variant_id, "warehouse_id": warehouse_id, "available": after}
        record_event(session, LOW_STOCK_TOPIC, payload)


def _announce_change(session: AsyncSession, redis: Redis, variant_id: uuid.UUID) -> None:
    """Tell stock watchers (``WatchStock``) that a variant's available units changed, once the
    transaction commits; they read the committed levels themselves, so a late or coalesced
    notice never shows a stale count."""
    pending(session, _publish_changes).append((redis, variant_id))


async def _publish_changes(changes: list[tuple[Redis, uuid.UUID]]) -> None:
    """Hand each changed variant to ``_publish`` once its transaction committed: in the API,
    whose Redis client outlives its ``coalescing()``, changes of a few orders close together go
    out as one notice, in the background (one followed every order); elsewhere at once."""
    for change in dict.fromkeys(changes):
        await send_coalesced(_publish, [change], holding=change[0])


async def _publish(changes: list[tuple[Redis, uuid.UUID]]) -> None:
    """Publish each changed variant on the stock-changes channel, packed as the hot calls are
    (``core/redis.send_packed``)."""
    try:
        for redis, variant_id in changes:
            await send_packed(redis, packed("PUBLISH", STOCK_CHANGES_CHANNEL, str(variant_id)))
    except RedisError:
        log.warning("stock_change_not_published", exc_info=True)
