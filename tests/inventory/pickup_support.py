"""Helpers of the pickup point tests: pickup warehouses made through the staff API."""

from __future__ import annotations

from typing import Any

import httpx

from tests.factories import Account

ALWAYS_OPEN = {
    day: [{"opens": "00:00", "closes": "24:00"}]
    for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
}
ADDRESS = {"line1": "1 Quay Street", "city": "Auckland", "postal_code": "1010", "country": "NZ"}


def pickup_details(
    lat: float,
    lon: float,
    *,
    opening_hours: dict[str, Any] | None = None,
    time_zone: str = "UTC",
) -> dict[str, Any]:
    """The ``pickup`` body of a warehouse at (lat, lon)."""
    return {
        "latitude": lat,
        "longitude": lon,
        "address": ADDRESS,
        "opening_hours": ALWAYS_OPEN if opening_hours is None else opening_hours,
        "time_zone": time_zone,
    }


async def create_pickup_point(
    client: httpx.AsyncClient, staff: Account, code: str, lat: float, lon: float, **details: Any
) -> dict[str, Any]:
    """A warehouse that is a pickup point at (lat, lon); the created warehouse."""
    response = await client.post(
        "/api/v1/warehouses",
        json={"code": code, "name": code.title(), "pickup": pickup_details(lat, lon, **details)},
        headers=staff.headers,
    )
    assert response.status_code == 201, response.text
    warehouse: dict[str, Any] = response.json()
    return warehouse


async def nearest(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    """The items of GET /pickup-points."""
    response = await client.get("/api/v1/pickup-points", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items
