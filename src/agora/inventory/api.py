"""Endpoints of inventory: warehouses, stock levels and holds (staff), pickup points (anyone)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from agora.core.dependencies import RedisDep, SessionDep
from agora.core.security import StaffPrincipal
from agora.inventory import pickup, service
from agora.inventory.models import Warehouse
from agora.inventory.schemas import (
    PickupIn,
    PickupOut,
    PickupPointList,
    PickupPointOut,
    ReleaseOut,
    ReservationIn,
    StockIn,
    VariantStockOut,
    WarehouseIn,
    WarehouseList,
    WarehouseOut,
)

router = APIRouter(tags=["inventory"])
DEFAULT_PICKUP_POINTS = 10
MAX_PICKUP_POINTS = 50
MAX_PICKUP_QUANTITY = 10_000


@router.get("/warehouses", summary="List warehouses")
async def list_warehouses(_: StaffPrincipal, session: SessionDep) -> WarehouseList:
    """Every warehouse, the default first."""
    warehouses = await service.list_warehouses(session)
    return WarehouseList(items=[_warehouse_out(item) for item in warehouses])


@router.post("/warehouses", status_code=201, summary="Create a warehouse")
async def create_warehouse(
    body: WarehouseIn, _: StaffPrincipal, session: SessionDep, response: Response
) -> WarehouseOut:
    """A new warehouse (a pickup point when ``pickup`` is given); 409 if its code is taken."""
    warehouse = await service.create_warehouse(
        session, body.code, body.name, is_default=body.is_default
    )
    if body.pickup is not None:
        warehouse = await pickup.make_pickup_point(session, warehouse.id, _details(body.pickup))
    response.headers["Location"] = f"/api/v1/warehouses/{warehouse.id}"
    return _warehouse_out(warehouse)


@router.get("/warehouses/{warehouse_id}", summary="A warehouse")
async def get_warehouse(
    warehouse_id: uuid.UUID, _: StaffPrincipal, session: SessionDep
) -> WarehouseOut:
    """One warehouse."""
    return _warehouse_out(await service.get_warehouse(session, warehouse_id))


@router.put("/warehouses/{warehouse_id}/pickup", summary="Make a warehouse a pickup point")
async def put_pickup(
    warehouse_id: uuid.UUID, body: PickupIn, _: StaffPrincipal, session: SessionDep
) -> WarehouseOut:
    """Set the location, address and opening hours buyers collect orders by."""
    return _warehouse_out(await pickup.make_pickup_point(session, warehouse_id, _details(body)))


@router.delete("/warehouses/{warehouse_id}/pickup", summary="Stop offering a pickup point")
async def delete_pickup(
    warehouse_id: uuid.UUID, _: StaffPrincipal, session: SessionDep
) -> WarehouseOut:
    """Buyers can no longer choose this warehouse; orders already placed keep it."""
    return _warehouse_out(await pickup.stop_pickup_point(session, warehouse_id))


@router.get(
    "/pickup-points",
    summary="Pickup points near a place, nearest first",
    responses={404: {"description": "No variant has the given variant_id"}},
)
async def list_pickup_points(
    session: SessionDep,
    lat: Annotated[float, Query(ge=-90, le=90, allow_inf_nan=False)],
    lon: Annotated[float, Query(ge=-180, le=180, allow_inf_nan=False)],
    radius_km: Annotated[float | None, Query(gt=0, le=20_100, allow_inf_nan=False)] = None,
    variant_id: uuid.UUID | None = None,
    quantity: Annotated[int, Query(ge=1, le=MAX_PICKUP_QUANTITY)] = 1,
    limit: Annotated[int, Query(ge=1, le=MAX_PICKUP_POINTS)] = DEFAULT_PICKUP_POINTS,
) -> PickupPointList:
    """The nearest pickup points by great-circle distance (metres), whether each is open now
    and, with ``variant_id``, whether it has ``quantity`` units of it."""
    found = await pickup.nearest_pickup_points(
        session,
        lat,
        lon,
        limit=limit,
        radius_m=None if radius_km is None else radius_km * 1000,
        variant_id=variant_id,
        quantity=quantity,
    )
    return PickupPointList(
        items=[
            PickupPointOut(
                id=point.warehouse.id,
                code=point.warehouse.code,
                name=point.warehouse.name,
                pickup=PickupOut.model_validate(point.warehouse),
                distance_m=round(point.distance_m),
                is_open=point.is_open,
                in_stock=point.in_stock,
            )
            for point in found
        ]
    )


@router.get("/variants/{variant_id}/stock", summary="A variant's stock levels")
async def get_stock(
    variant_id: uuid.UUID, _: StaffPrincipal, session: SessionDep
) -> VariantStockOut:
    """Units on hand, reserved, allocated and available, per warehouse."""
    return VariantStockOut.model_validate(await service.variant_stock(session, variant_id))


@router.put("/variants/{variant_id}/stock", summary="Set a variant's units on hand")
async def put_stock(
    variant_id: uuid.UUID, body: StockIn, _: StaffPrincipal, session: SessionDep, redis: RedisDep
) -> VariantStockOut:
    """Set the units on hand in a warehouse (the default one when omitted)."""
    stock = await service.set_stock(
        session, variant_id, body.quantity, body.warehouse_id, redis=redis
    )
    return VariantStockOut.model_validate(stock)


@router.post("/stock-reservations", status_code=201, summary="Hold units for a reference")
async def reserve(
    body: ReservationIn, _: StaffPrincipal, session: SessionDep, redis: RedisDep
) -> ReservationIn:
    """Hold units of each line for ``reference_id`` (an ERP's order), all or nothing: in
    ``warehouse_id`` when given; 409 ``out_of_stock`` naming the variant that lacks them."""
    quantities = service.quantities_of((line.variant_id, line.quantity) for line in body.lines)
    await service.reserve(
        session, body.reference_id, quantities, redis=redis, warehouse_id=body.warehouse_id
    )
    return body


@router.post(
    "/stock-reservations/{reference_id}/release", summary="Release the units held for a reference"
)
async def release(
    reference_id: uuid.UUID, _: StaffPrincipal, session: SessionDep, redis: RedisDep
) -> ReleaseOut:
    """Make every unit held for ``reference_id`` available again (0 when none are held)."""
    return ReleaseOut(units=await service.release(session, reference_id, redis=redis))


def _warehouse_out(warehouse: Warehouse) -> WarehouseOut:
    pickup_details = None if warehouse.location is None else PickupOut.model_validate(warehouse)
    return WarehouseOut(
        id=warehouse.id,
        code=warehouse.code,
        name=warehouse.name,
        is_default=warehouse.is_default,
        is_pickup_point=warehouse.is_pickup_point,
        pickup=pickup_details,
    )


def _details(body: PickupIn) -> pickup.PickupDetails:
    return pickup.PickupDetails(
        latitude=body.latitude,
        longitude=body.longitude,
        address=body.address.model_dump(exclude_none=True),
        opening_hours={
            day: [interval.model_dump() for interval in intervals]
            for day, intervals in body.opening_hours.items()
        },
        time_zone=body.time_zone,
    )
