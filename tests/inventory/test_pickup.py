"""Pickup points: nearest first by exact great-circle distance (antimeridian and poles included),
open now, in stock, and checkout collecting at one."""

from __future__ import annotations

import datetime as dt
import math
import random
import uuid

import httpx
from sqlalchemy import func, insert, select

from agora.core.db import Database
from agora.core.security import Role
from agora.inventory.hours import is_open
from agora.inventory.models import StockReservation, Warehouse
from agora.settings import Settings
from tests.factories import create_user, create_variant
from tests.inventory.pickup_support import create_pickup_point, nearest, pickup_details
from tests.orders.support import buy, fill_cart, order_cart


def great_circle_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Distance by the spherical law of cosines on unit vectors (independent of haversine)."""
    a = _unit(lat1, lon1)
    b = _unit(lat2, lon2)
    dot = max(-1.0, min(1.0, sum(x * y for x, y in zip(a, b, strict=True))))
    cross = math.sqrt(
        (a[1] * b[2] - a[2] * b[1]) ** 2
        + (a[2] * b[0] - a[0] * b[2]) ** 2
        + (a[0] * b[1] - a[1] * b[0]) ** 2
    )
    return 6_371_008.8 * math.atan2(cross, dot)


def _unit(lat: float, lon: float) -> tuple[float, float, float]:
    phi, lam = math.radians(lat), math.radians(lon)
    return (math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi))


async def test_nearest_first_with_distance_across_the_antimeridian(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    staff = await create_user(database, settings, Role.STAFF)
    # Fiji straddles 180°: the shop 20 km east across the line is nearer than the one 60 km
    # west, though planar degrees put it ~360° away.
    await create_pickup_point(client, staff, "west", -17.0, 179.5)
    await create_pickup_point(client, staff, "east", -17.0, -179.9)
    await create_pickup_point(client, staff, "far", -17.0, 170.0)
    items = await nearest(client, lat=-17.0, lon=179.9, limit=2)
    assert [item["code"] for item in items] == ["east", "west"]
    assert abs(items[0]["distance_m"] - great_circle_m(-17.0, 179.9, -17.0, -179.9)) <= 1
    assert (items[0]["is_open"], items[0]["in_stock"]) == (True, None)


async def test_nearest_near_a_pole(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    staff = await create_user(database, settings, Role.STAFF)
    # Near the pole, 180° of longitude apart is a few km; the same longitude 2° south is 222 km.
    await create_pickup_point(client, staff, "across", 89.95, 10.0)
    await create_pickup_point(client, staff, "below", 87.9, -170.0)
    items = await nearest(client, lat=89.95, lon=-170.0, limit=1)
    assert [item["code"] for item in items] == ["across"]
    assert items[0]["distance_m"] < 12_000


async def test_subnormal_coordinates_and_radius_are_answered(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    staff = await create_user(database, settings, Role.STAFF)
    await create_pickup_point(client, staff, "origin", 0.0001, 0.0001)
    await create_pickup_point(client, staff, "tiny", 1e-300, -1e-200)
    # PostgreSQL's geometry raises an underflow error on products of such tiny floats.
    items = await nearest(client, lat=1e-200, lon=-1e-300, radius_km=5e-324, limit=2)
    assert [item["code"] for item in items] == ["tiny"]
    items = await nearest(client, lat=1e-200, lon=-1e-300, limit=2)
    assert [item["code"] for item in items] == ["tiny", "origin"]


async def test_search_is_exact_against_a_brute_force(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    rng = random.Random(16)
    points = [(rng.uniform(-90, 90), rng.uniform(-180, 180)) for _ in range(600)]
    points += [(rng.uniform(80, 90), rng.uniform(-180, 180)) for _ in range(150)]
    points += [
        (rng.uniform(-10, 10), rng.choice([-1, 1]) * rng.uniform(175, 180)) for _ in range(150)
    ]
    await _insert_points(database, points)
    queries = [(89.9, 0.0), (-89.5, 120.0), (0.0, 179.99), (5.0, -179.8), (48.85, 2.35)]
    queries += [(rng.uniform(-90, 90), rng.uniform(-180, 180)) for _ in range(10)]
    for lat, lon in queries:
        expected = sorted(great_circle_m(lat, lon, p_lat, p_lon) for p_lat, p_lon in points)[:10]
        found = [item["distance_m"] for item in await nearest(client, lat=lat, lon=lon)]
        assert len(found) == 10
        assert all(abs(a - b) <= 1 for a, b in zip(found, expected, strict=True)), (lat, lon)


async def test_radius_stock_and_opening_hours(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    staff = await create_user(database, settings, Role.STAFF)
    variant_id = await create_variant(database)
    closed = {"monday": [{"opens": "09:00", "closes": "09:01"}]}
    near = await create_pickup_point(client, staff, "near", 48.86, 2.35, opening_hours=closed)
    stocked = await create_pickup_point(client, staff, "stocked", 48.90, 2.35)
    await create_pickup_point(client, staff, "lyon", 45.76, 4.84)
    for warehouse, quantity in ((near, 1), (stocked, 5)):
        response = await client.put(
            f"/api/v1/variants/{variant_id}/stock",
            json={"quantity": quantity, "warehouse_id": warehouse["id"]},
            headers=staff.headers,
        )
        assert response.status_code == 200, response.text
    items = await nearest(
        client, lat=48.85, lon=2.35, radius_km=50, variant_id=str(variant_id), quantity=2
    )
    assert [(item["code"], item["in_stock"], item["is_open"]) for item in items] == [
        ("near", False, False),
        ("stocked", True, True),
    ]
    unknown = await client.get(
        "/api/v1/pickup-points", params={"lat": 0, "lon": 0, "variant_id": str(uuid.uuid4())}
    )
    assert unknown.status_code == 404
    bad = await client.get("/api/v1/pickup-points", params={"lat": 91, "lon": 0})
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"


async def test_pickup_details_are_validated(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    staff = await create_user(database, settings, Role.STAFF)
    body = {"code": "x", "name": "X", "pickup": pickup_details(0, 0, time_zone="Mars/Olympus")}
    response = await client.post("/api/v1/warehouses", json=body, headers=staff.headers)
    assert response.status_code == 422
    hours = {"funday": [{"opens": "09:00", "closes": "18:00"}]}
    body["pickup"] = pickup_details(0, 0, opening_hours=hours)
    response = await client.post("/api/v1/warehouses", json=body, headers=staff.headers)
    assert response.status_code == 422


def test_opening_hours_in_local_time_and_past_midnight() -> None:
    hours = {"friday": [{"opens": "22:00", "closes": "02:00"}]}
    # Saturday 00:30 in Auckland (UTC+13 in summer) is Friday 11:30 UTC.
    assert is_open(hours, "Pacific/Auckland", dt.datetime(2026, 11, 27, 11, 30, tzinfo=dt.UTC))
    assert not is_open(hours, "Pacific/Auckland", dt.datetime(2026, 11, 27, 14, 0, tzinfo=dt.UTC))
    assert not is_open(hours, "UTC", dt.datetime(2026, 11, 27, 11, 30, tzinfo=dt.UTC))


async def test_checkout_collects_at_a_pickup_point(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    staff = await create_user(database, settings, Role.STAFF)
    buyer = await create_user(database, settings)
    variant_id = await create_variant(database, stock=10, weight_grams=500)
    point = await create_pickup_point(client, staff, "shop", 52.52, 13.40)
    await client.put(
        f"/api/v1/variants/{variant_id}/stock",
        json={"quantity": 3, "warehouse_id": point["id"]},
        headers=staff.headers,
    )
    order = await buy(client, buyer, {variant_id: 2}, pickup_point_id=point["id"])
    assert order["shipping"]["amount"] == 0
    assert (order["shipping_method"], order["pickup_point_id"]) == ("pickup", point["id"])
    async with database.unit_of_work() as session:
        held = await session.scalar(
            select(StockReservation.warehouse_id).where(
                StockReservation.reference_id == uuid.UUID(order["id"])
            )
        )
    assert str(held) == point["id"]  # not the default warehouse, which comes first by key
    # Only one unit left there: the next pickup order of two is out of stock, though the
    # default warehouse has plenty.
    second = await create_user(database, settings)
    cart_id = await fill_cart(client, second, {variant_id: 2})
    refused = await order_cart(client, second, cart_id, pickup_point_id=point["id"])
    assert refused.status_code == 409
    assert refused.json()["code"] == "out_of_stock"
    elsewhere = await order_cart(client, second, cart_id, pickup_point_id=str(uuid.uuid4()))
    assert elsewhere.status_code == 422
    assert elsewhere.json()["code"] == "pickup_point_unavailable"


async def _insert_points(database: Database, points: list[tuple[float, float]]) -> None:
    rows = [
        {
            "id": uuid.uuid4(),
            "code": f"p{index}",
            "name": f"Point {index}",
            "is_pickup_point": True,
            "latitude": lat,
            "longitude": lon,
            "location": (lon, lat),
            "address": {},
            "opening_hours": {},
            "time_zone": "UTC",
        }
        for index, (lat, lon) in enumerate(points)
    ]
    async with database.unit_of_work() as session:
        await session.execute(insert(Warehouse), rows)
        count = await session.scalar(select(func.count()).select_from(Warehouse))
    assert count == len(points)
