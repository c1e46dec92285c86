"""Pickup points: warehouses where buyers collect their orders, and the search for the nearest.

A warehouse becomes a pickup point with a location, an address and opening hours in its own
time zone. The nearest-first search is exact on the sphere (see ``geo.py``): the GiST index
proposes candidates by planar distance, then the circle they bound is searched through the
index again and ranked by great-circle distance.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.db import utcnow
from agora.core.errors import NotFound, ValidationFailed
from agora.inventory import repository
from agora.inventory.geo import haversine_m
from agora.inventory.hours import is_open
from agora.inventory.models import Warehouse
from agora.inventory.service import get_warehouse

PICKUP_METHOD = "pickup"  # the shipping method of an order collected at a pickup point
COORDINATE_DECIMALS = 7  # about a centimetre of latitude
MIN_RADIUS_M = 0.01  # a search radius is at least a centimetre


@dataclass(frozen=True)
class PickupDetails:
    """Where a pickup point is and when it is open."""

    latitude: float
    longitude: float
    address: dict[str, Any]
    opening_hours: dict[str, Any]
    time_zone: str


@dataclass(frozen=True)
class PickupPoint:
    """A pickup point found near the buyer: how far, whether open now, whether it has the
    variant asked about (None when none was)."""

    warehouse: Warehouse
    distance_m: float
    is_open: bool
    in_stock: bool | None


async def make_pickup_point(
    session: AsyncSession, warehouse_id: uuid.UUID, details: PickupDetails
) -> Warehouse:
    """Make a warehouse a pickup point (or update its details); 404 if it does not exist."""
    await get_warehouse(session, warehouse_id)
    lat, lon = to_centimetres(details.latitude), to_centimetres(details.longitude)
    values = {
        "is_pickup_point": True,
        "latitude": lat,
        "longitude": lon,
        "location": (lon, lat),
        "address": details.address,
        "opening_hours": details.opening_hours,
        "time_zone": details.time_zone,
    }
    warehouse = await repository.update_pickup_point(session, warehouse_id, values)
    assert warehouse is not None
    return warehouse


async def stop_pickup_point(session: AsyncSession, warehouse_id: uuid.UUID) -> Warehouse:
    """Stop offering a warehouse as a pickup point (its details are kept); 404 if missing."""
    await get_warehouse(session, warehouse_id)
    warehouse = await repository.update_pickup_point(
        session, warehouse_id, {"is_pickup_point": False}
    )
    assert warehouse is not None
    return warehouse


async def pickup_point(session: AsyncSession, warehouse_id: uuid.UUID) -> Warehouse:
    """A warehouse that is a pickup point; 422 ``pickup_point_unavailable`` otherwise."""
    warehouse = await repository.get_warehouse(session, warehouse_id)
    if warehouse is None or not warehouse.is_pickup_point:
        raise ValidationFailed(
            "No such pickup point.",
            code="pickup_point_unavailable",
            pickup_point_id=str(warehouse_id),
        )
    return warehouse


def to_centimetres(degrees: float) -> float:
    """A coordinate to centimetre precision: all a pickup search needs, and it keeps subnormal
    floats out of PostgreSQL's geometry, whose products of them raise an underflow error."""
    return round(degrees, COORDINATE_DECIMALS)


async def nearest_pickup_points(
    session: AsyncSession,
    lat: float,
    lon: float,
    *,
    limit: int,
    radius_m: float | None = None,
    variant_id: uuid.UUID | None = None,
    quantity: int = 1,
    at: dt.datetime | None = None,
) -> Sequence[PickupPoint]:
    """The ``limit`` pickup points nearest to (``lat``, ``lon``), nearest first, within
    ``radius_m`` when given; 404 ``variant_not_found`` for an unknown variant."""
    if variant_id is not None and not await repository.variant_exists(session, variant_id):
        raise NotFound("No such variant.", code="variant_not_found")
    lat, lon = to_centimetres(lat), to_centimetres(lon)
    if radius_m is not None:
        radius_m = max(round(radius_m, 2), MIN_RADIUS_M)
    candidates = await repository.planar_nearest_pickup_points(session, lat, lon, limit)
    if not candidates:
        return []
    # ``limit`` real points lie within this distance, so the true nearest ``limit`` do too.
    # (A centimetre more, so that rounding in SQL cannot drop the farthest candidate itself.)
    bound = max(haversine_m(lat, lon, c_lat, c_lon) for c_lat, c_lon in candidates) + 0.01
    if radius_m is not None:
        bound = min(bound, radius_m)
    found = await repository.pickup_points_within(
        session, lat, lon, distance_m=bound, limit=limit, variant_id=variant_id
    )
    now = at or utcnow()
    return [
        PickupPoint(
            warehouse=point.warehouse,
            distance_m=point.distance_m,
            is_open=is_open(
                point.warehouse.opening_hours or {}, point.warehouse.time_zone or "UTC", now
            ),
            in_stock=None if point.available is None else point.available >= quantity,
        )
        for point in found
    ]
