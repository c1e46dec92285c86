"""Every query on the inventory tables.

Stock counts only change through single conditional ``UPDATE … RETURNING`` statements, never by
reading a count and writing it back.
"""

from __future__ import annotations

import functools
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    CTE,
    BindParameter,
    ColumnElement,
    Double,
    Integer,
    bindparam,
    func,
    literal,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from agora.catalog.models import Product, ProductStatus, ProductVariant
from agora.core.db import statement_batches
from agora.core.driver import DriverStatement
from agora.core.errors import Conflict
from agora.inventory.geo import EARTH_RADIUS_M, bounding_boxes
from agora.inventory.models import (
    MovementKind,
    ReservationStatus,
    StockLevel,
    StockMovement,
    StockReservation,
    Warehouse,
)

DEFAULT_WAREHOUSE_CODE = "default"
_available_units = StockLevel.quantity - StockLevel.reserved - StockLevel.allocated


@dataclass(frozen=True)
class StockChange:
    """Signed changes to the three counts of one stock level."""

    quantity: int = 0
    reserved: int = 0
    allocated: int = 0

    @property
    def available(self) -> int:
        """The resulting change of the available count."""
        return self.quantity - self.reserved - self.allocated


@dataclass(frozen=True)
class WarehouseUnits:
    """Units of a variant in one warehouse: what a reservation or a movement line is about."""

    variant_id: uuid.UUID
    warehouse_id: uuid.UUID
    quantity: int


async def default_warehouse_id(session: AsyncSession) -> uuid.UUID:
    """The default warehouse, created on first use (concurrent callers agree on one)."""
    found = await session.scalar(select(Warehouse.id).where(Warehouse.is_default))
    if found is not None:
        return found
    await session.execute(
        insert(Warehouse)
        .values(id=uuid.uuid4(), code=DEFAULT_WAREHOUSE_CODE, name="Default", is_default=True)
        .on_conflict_do_nothing()
    )
    created = await session.scalar(select(Warehouse.id).where(Warehouse.is_default))
    if created is None:
        raise Conflict(
            "No default warehouse, and the code 'default' is taken by another one.",
            code="no_default_warehouse",
        )
    return created


async def list_warehouses(session: AsyncSession) -> Sequence[Warehouse]:
    """Every warehouse, the default first."""
    result = await session.scalars(
        select(Warehouse).order_by(Warehouse.is_default.desc(), Warehouse.code)
    )
    return result.all()


async def get_warehouse(session: AsyncSession, warehouse_id: uuid.UUID) -> Warehouse | None:
    """A warehouse by id."""
    return await session.get(Warehouse, warehouse_id)


async def insert_warehouse(
    session: AsyncSession, code: str, name: str, *, is_default: bool
) -> Warehouse | None:
    """A new warehouse, or None when its code is taken. A new default demotes the old one."""
    if is_default:
        await session.execute(
            update(Warehouse).where(Warehouse.is_default).values(is_default=False)
        )
    warehouse_id = await session.scalar(
        insert(Warehouse)
        .values(id=uuid.uuid4(), code=code, name=name, is_default=is_default)
        .on_conflict_do_nothing()
        .returning(Warehouse.id)
    )
    return None if warehouse_id is None else await session.get(Warehouse, warehouse_id)


async def variant_exists(session: AsyncSession, variant_id: uuid.UUID) -> bool:
    """Whether the catalog has this variant."""
    found = await session.scalar(select(ProductVariant.id).where(ProductVariant.id == variant_id))
    return found is not None


async def product_of_variant(session: AsyncSession, variant_id: uuid.UUID) -> uuid.UUID:
    """The product a variant belongs to."""
    product_id = await session.scalar(
        select(ProductVariant.product_id).where(ProductVariant.id == variant_id)
    )
    assert product_id is not None, "stock only exists for existing variants"
    return product_id


async def unstocked_variants(session: AsyncSession) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(variant, product) of every variant no warehouse has a stock level for."""
    rows = await session.execute(
        select(ProductVariant.id, ProductVariant.product_id).where(
            ~select(StockLevel.variant_id)
            .where(StockLevel.variant_id == ProductVariant.id)
            .exists()
        )
    )
    return [(variant_id, product_id) for variant_id, product_id in rows]


async def insert_stock_levels(
    session: AsyncSession, warehouse_id: uuid.UUID, quantities: dict[uuid.UUID, int]
) -> set[uuid.UUID]:
    """New stock levels (existing ones are kept); the variants inserted."""
    rows = [
        {"variant_id": variant_id, "warehouse_id": warehouse_id, "quantity": quantity}
        for variant_id, quantity in quantities.items()
    ]
    inserted: set[uuid.UUID] = set()
    for batch in statement_batches(rows, len(StockLevel.__table__.columns)):
        inserted |= set(
            await session.scalars(
                insert(StockLevel)
                .values(batch)
                .on_conflict_do_nothing()
                .returning(StockLevel.variant_id)
            )
        )
    return inserted


async def lock_stock_level(
    session: AsyncSession, variant_id: uuid.UUID, warehouse_id: uuid.UUID
) -> StockLevel:
    """The stock level of a variant in a warehouse, created empty if missing, locked."""
    await session.execute(
        insert(StockLevel)
        .values(variant_id=variant_id, warehouse_id=warehouse_id)
        .on_conflict_do_nothing()
    )
    level = await session.scalar(
        select(StockLevel)
        .where(StockLevel.variant_id == variant_id, StockLevel.warehouse_id == warehouse_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert level is not None
    return level


async def stock_levels(session: AsyncSession, variant_id: uuid.UUID) -> Sequence[StockLevel]:
    """The stock levels of a variant, one per warehouse that ever held it."""
    result = await session.scalars(
        select(StockLevel)
        .where(StockLevel.variant_id == variant_id)
        .order_by(StockLevel.warehouse_id)
        .execution_options(populate_existing=True)
    )
    return result.all()


async def available_by_variant(
    session: AsyncSession, variant_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Units available for sale per variant, over every warehouse (absent means none)."""
    rows = await session.execute(
        select(StockLevel.variant_id, func.sum(_available_units))
        .where(StockLevel.variant_id.in_(list(variant_ids)))
        .group_by(StockLevel.variant_id)
    )
    return {variant_id: int(available) for variant_id, available in rows}


@dataclass(frozen=True)
class VariantUnits:
    """A variant as a cart line shows it, with its units available over every warehouse."""

    id: uuid.UUID
    product_name: str
    product_status: ProductStatus
    sku: str
    price_amount: int
    currency: str
    weight_grams: int
    available: int


_available_of_variant = (
    select(func.coalesce(func.sum(_available_units), 0))
    .where(StockLevel.variant_id == ProductVariant.id)
    .scalar_subquery()
)
# Read on every item added to a cart: built once, sent straight to the driver (core/driver.py).
_VARIANT_UNITS = DriverStatement(
    select(
        ProductVariant.id,
        Product.name.label("product_name"),
        Product.status.label("product_status"),
        ProductVariant.sku,
        ProductVariant.price_amount,
        ProductVariant.currency,
        ProductVariant.weight_grams,
        _available_of_variant.label("available"),
    )
    .join(Product, Product.id == ProductVariant.product_id)
    .where(ProductVariant.id == bindparam("variant_id"))
)


async def variant_units(session: AsyncSession, variant_id: uuid.UUID) -> VariantUnits | None:
    """A variant with its product's name and status and its units available for sale over
    every warehouse, in one query; None for an unknown variant."""
    row = await _VARIANT_UNITS.fetchrow(session, variant_id=variant_id)
    if row is None:
        return None
    return VariantUnits(**{**dict(row), "product_status": ProductStatus(row["product_status"])})


async def warehouses_with_stock(session: AsyncSession, variant_id: uuid.UUID) -> list[uuid.UUID]:
    """The warehouses holding available units of a variant, in primary-key order.

    Read without locks: only a candidate list for the conditional updates that decide.
    """
    found = await session.scalars(
        select(StockLevel.warehouse_id)
        .where(StockLevel.variant_id == variant_id, _available_units > 0)
        .order_by(StockLevel.warehouse_id)
    )
    return list(found)


def _reserve_in_first_warehouse() -> DriverStatement:
    """The statement of ``reserve_in_first_warehouse``, built once: its values are the
    bindparams ``variant_id``, ``quantity``, ``reference_id`` and ``reservation_id``."""
    variant_id: BindParameter[uuid.UUID] = bindparam("variant_id")
    quantity: BindParameter[int] = bindparam("quantity")
    candidate = aliased(StockLevel)
    first = (
        select(candidate.warehouse_id)
        .where(
            candidate.variant_id == variant_id,
            candidate.quantity - candidate.reserved - candidate.allocated >= quantity,
        )
        .order_by(candidate.warehouse_id)
        .limit(1)
        .scalar_subquery()
    )
    held = (
        update(StockLevel)
        .where(
            StockLevel.variant_id == variant_id,
            StockLevel.warehouse_id == first,
            _available_units >= quantity,
        )
        .values(reserved=StockLevel.reserved + quantity)
        .returning(StockLevel.warehouse_id, _available_units.label("available"))
        .cte("held")
    )
    units: dict[str, ColumnElement[Any]] = {
        "variant_id": variant_id,
        "quantity": quantity,
        "reference_id": bindparam("reference_id"),
    }
    reservation: dict[str, ColumnElement[Any]] = {
        "id": bindparam("reservation_id"),
        "status": literal(ReservationStatus.HELD, StockReservation.status.type),
        **units,
    }
    movement: dict[str, ColumnElement[Any]] = {
        "kind": literal(MovementKind.RESERVATION, StockMovement.kind.type),
        **units,
    }
    return DriverStatement(
        select(held.c.warehouse_id, held.c.available).add_cte(
            _insert_held(StockReservation, held, reservation),
            _insert_held(StockMovement, held, movement),
        )
    )


async def reserve_in_first_warehouse(
    session: AsyncSession, reference_id: uuid.UUID, variant_id: uuid.UUID, quantity: int
) -> tuple[uuid.UUID, int] | None:
    """Hold ``quantity`` units for ``reference_id`` in the first warehouse (in key order) that has
    them all, recording the reservation and its movement, in one statement; that warehouse and
    the units left there, or None (and nothing written).

    The warehouse is picked from the statement's snapshot and the update re-checks the count on
    the row it locks, so None also means "a concurrent buyer emptied the picked warehouse".
    Every checkout sends it: built once, and sent straight to the driver (``core/driver.py``).
    """
    row = await _RESERVE_IN_FIRST_WAREHOUSE.fetchrow(
        session,
        variant_id=variant_id,
        quantity=quantity,
        reference_id=reference_id,
        reservation_id=uuid.uuid4(),
    )
    return None if row is None else (row[0], int(row[1]))


def _insert_held(
    model: type[StockReservation] | type[StockMovement],
    held: CTE,
    values: Mapping[str, ColumnElement[Any]],
) -> CTE:
    """An INSERT of a ``model`` row of ``values`` in each warehouse ``held`` returns, as a CTE."""
    table = model.__table__
    row = [type_coerce(value, table.c[name].type) for name, value in values.items()]
    source = select(*row, held.c.warehouse_id)
    return (
        insert(model)
        .from_select([*values, "warehouse_id"], source)
        .cte(f"{model.__tablename__}_held")
    )


_RESERVE_IN_FIRST_WAREHOUSE = _reserve_in_first_warehouse()


async def reserve_units(
    session: AsyncSession, variant_id: uuid.UUID, warehouse_id: uuid.UUID, quantity: int
) -> int | None:
    """Hold ``quantity`` units if that many are available; the units left, or None if not."""
    return await session.scalar(
        update(StockLevel)
        .where(
            StockLevel.variant_id == variant_id,
            StockLevel.warehouse_id == warehouse_id,
            _available_units >= quantity,
        )
        .values(reserved=StockLevel.reserved + quantity)
        .returning(_available_units)
        .execution_options(synchronize_session=False)
    )


_CHANGE_STOCK = DriverStatement(
    update(StockLevel)
    .where(
        StockLevel.variant_id == bindparam("variant_id"),
        StockLevel.warehouse_id == bindparam("warehouse_id"),
    )
    .values(
        quantity=StockLevel.quantity + bindparam("quantity", type_=Integer),
        reserved=StockLevel.reserved + bindparam("reserved", type_=Integer),
        allocated=StockLevel.allocated + bindparam("allocated", type_=Integer),
    )
    .returning(_available_units)
)


async def change_stock(
    session: AsyncSession, variant_id: uuid.UUID, warehouse_id: uuid.UUID, change: StockChange
) -> int:
    """Apply signed changes to a stock level; the units available afterwards.

    A change that would break a CHECK constraint is a 409 (the transaction is then lost).
    """
    try:
        row = await _CHANGE_STOCK.fetchrow(
            session,
            variant_id=variant_id,
            warehouse_id=warehouse_id,
            quantity=change.quantity,
            reserved=change.reserved,
            allocated=change.allocated,
        )
    except IntegrityError as exc:
        raise Conflict("Not enough stock for this change.", code="insufficient_stock") from exc
    assert row is not None, "a reservation always points at an existing stock level"
    return int(row[0])


async def set_quantity(session: AsyncSession, level: StockLevel, quantity: int) -> None:
    """Set the on-hand units of a locked stock level."""
    await session.execute(
        update(StockLevel)
        .where(
            StockLevel.variant_id == level.variant_id,
            StockLevel.warehouse_id == level.warehouse_id,
        )
        .values(quantity=quantity)
        .execution_options(synchronize_session=False)
    )


async def add_reservations(
    session: AsyncSession, reference_id: uuid.UUID, held: Sequence[WarehouseUnits]
) -> None:
    """Record the units held for a reference, in one statement."""
    rows = [
        {
            "id": uuid.uuid4(),
            "reference_id": reference_id,
            "variant_id": units.variant_id,
            "warehouse_id": units.warehouse_id,
            "quantity": units.quantity,
            "status": ReservationStatus.HELD,
        }
        for units in held
    ]
    await session.execute(insert(StockReservation).values(rows))


@functools.cache
def _taking(
    statuses: tuple[ReservationStatus, ...], new_status: ReservationStatus, kind: MovementKind
) -> DriverStatement:
    """``take_reservations``' statement for one kind of move (built once)."""
    locked = (
        select(StockReservation.id, StockReservation.status.label("previous"))
        .where(
            StockReservation.reference_id == bindparam("reference_id"),
            # not ``IN``: a driver statement's values are plain bindparams, not an expanding list
            or_(*(StockReservation.status == status for status in statuses)),
        )
        .order_by(StockReservation.variant_id, StockReservation.warehouse_id)
        .with_for_update()
        .subquery()
    )
    taken = (
        update(StockReservation)
        .where(StockReservation.id == locked.c.id)
        .values(status=new_status, updated_at=func.now())
        .returning(
            StockReservation.variant_id,
            StockReservation.warehouse_id,
            StockReservation.quantity,
            locked.c.previous,
        )
        .cte("taken")
    )
    table = StockMovement.__table__
    ledger = select(
        taken.c.variant_id,
        taken.c.warehouse_id,
        literal(kind, table.c.kind.type),
        taken.c.quantity,
        bindparam("reference_id", type_=table.c.reference_id.type),
    ).order_by(taken.c.variant_id, taken.c.warehouse_id)
    recorded = insert(StockMovement).from_select(
        ["variant_id", "warehouse_id", "kind", "quantity", "reference_id"], ledger
    )
    return DriverStatement(select(taken).add_cte(recorded.cte("recorded")))


async def take_reservations(
    session: AsyncSession,
    reference_id: uuid.UUID,
    statuses: Iterable[ReservationStatus],
    new_status: ReservationStatus,
    kind: MovementKind,
) -> list[tuple[WarehouseUnits, ReservationStatus]]:
    """Lock a reference's reservations in ``statuses``, move them to ``new_status`` and append
    a ledger line of ``kind`` for each, in one statement (locked in (variant, warehouse) order).

    Returns the units of each with its previous status, in (variant, warehouse) order, so that
    the stock rows are then locked in primary-key order. A concurrent caller waits, then finds
    nothing to move.
    """
    statement = _taking(tuple(statuses), new_status, kind)
    rows = await statement.fetch(session, reference_id=reference_id)
    moved = [(WarehouseUnits(*row[:3]), ReservationStatus(row[3])) for row in rows]
    return sorted(moved, key=lambda item: (item[0].variant_id, item[0].warehouse_id))


async def add_movements(
    session: AsyncSession,
    kind: MovementKind,
    units: Sequence[WarehouseUnits],
    reference_id: uuid.UUID | None = None,
) -> None:
    """Append lines of one kind to the movement ledger, in one statement (rows passed as
    parameters, so the statement is compiled once per process)."""
    rows = [
        {
            "variant_id": line.variant_id,
            "warehouse_id": line.warehouse_id,
            "kind": kind,
            "quantity": line.quantity,
            "reference_id": reference_id,
        }
        for line in units
    ]
    if rows:
        await session.execute(insert(StockMovement), rows)


async def movements(session: AsyncSession, variant_id: uuid.UUID) -> Sequence[StockMovement]:
    """The ledger of a variant, oldest first."""
    result = await session.scalars(
        select(StockMovement)
        .where(StockMovement.variant_id == variant_id)
        .order_by(StockMovement.id)
    )
    return result.all()


@dataclass(frozen=True)
class NearbyPoint:
    """A pickup point found near a place, its distance, and its available units of a variant
    (None when no variant was asked about)."""

    warehouse: Warehouse
    distance_m: float
    available: int | None


def _distance_m(lat: float, lon: float) -> ColumnElement[float]:
    """The haversine distance in metres from (``lat``, ``lon``) to a warehouse, in SQL."""
    half_dphi = func.radians(Warehouse.latitude - lat) / 2
    half_dlambda = func.radians(Warehouse.longitude - lon) / 2
    a = func.power(func.sin(half_dphi), 2) + func.cos(math.radians(lat)) * func.cos(
        func.radians(Warehouse.latitude)
    ) * func.power(func.sin(half_dlambda), 2)
    return type_coerce(2 * EARTH_RADIUS_M * func.asin(func.sqrt(func.least(1.0, a))), Double).label(
        "distance_m"
    )


async def planar_nearest_pickup_points(
    session: AsyncSession, lat: float, lon: float, limit: int
) -> list[tuple[float, float]]:
    """(latitude, longitude) of the ``limit`` pickup points nearest on the plane of degrees:
    a GiST KNN scan, only candidates for the exact search (see ``geo.py``)."""
    rows = await session.execute(
        select(Warehouse.latitude, Warehouse.longitude)
        .where(Warehouse.is_pickup_point)
        .order_by(Warehouse.location.op("<->")(func.point(lon, lat)))
        .limit(limit)
    )
    return [(float(row[0] or 0.0), float(row[1] or 0.0)) for row in rows]


async def pickup_points_within(
    session: AsyncSession,
    lat: float,
    lon: float,
    *,
    distance_m: float,
    limit: int,
    variant_id: uuid.UUID | None = None,
) -> list[NearbyPoint]:
    """The ``limit`` pickup points nearest to (``lat``, ``lon``) within ``distance_m``, nearest
    first, found through the GiST index by the boxes that hold that circle."""
    distance = _distance_m(lat, lon)
    in_boxes = [
        Warehouse.location.op("<@")(func.box(func.point(west, south), func.point(east, north)))
        for west, south, east, north in bounding_boxes(lat, lon, distance_m)
    ]
    query = (
        select(Warehouse, distance)
        .where(Warehouse.is_pickup_point, or_(*in_boxes), distance <= distance_m)
        .order_by(distance, Warehouse.id)
        .limit(limit)
    )
    if variant_id is not None:
        query = query.add_columns(_available_units).outerjoin(
            StockLevel,
            (StockLevel.warehouse_id == Warehouse.id) & (StockLevel.variant_id == variant_id),
        )
    rows = await session.execute(query)
    return [
        NearbyPoint(
            row[0],
            float(row[1]),
            None if variant_id is None else int(row[-1] or 0),
        )
        for row in rows
    ]


async def update_pickup_point(
    session: AsyncSession, warehouse_id: uuid.UUID, values: dict[str, Any]
) -> Warehouse | None:
    """Set (or, with ``is_pickup_point=False``, clear) a warehouse's pickup point details."""
    await session.execute(
        update(Warehouse)
        .where(Warehouse.id == warehouse_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return await session.get(Warehouse, warehouse_id, populate_existing=True)
