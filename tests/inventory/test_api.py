"""Staff stock endpoints: warehouses and PUT /variants/{id}/stock."""

from __future__ import annotations

import uuid

import httpx

from agora.core.db import Database
from agora.core.security import Role
from agora.settings import Settings
from tests.factories import create_user, create_variant


async def test_put_stock_sets_the_default_warehouse(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    staff = await create_user(database, settings, Role.STAFF)
    variant = await create_variant(database)

    response = await client.put(
        f"/api/v1/variants/{variant}/stock", json={"quantity": 7}, headers=staff.headers
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["available"] == 7
    [level] = body["levels"]
    assert (level["quantity"], level["reserved"], level["allocated"]) == (7, 0, 0)
    warehouses = (await client.get("/api/v1/warehouses", headers=staff.headers)).json()["items"]
    assert [(w["code"], w["is_default"], w["id"]) for w in warehouses] == [
        ("default", True, level["warehouse_id"])
    ]


async def test_stock_in_a_named_warehouse(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    staff = await create_user(database, settings, Role.STAFF)
    variant = await create_variant(database, stock=2)
    created = await client.post(
        "/api/v1/warehouses", json={"code": "east", "name": "East"}, headers=staff.headers
    )
    assert created.status_code == 201
    assert created.headers["location"] == f"/api/v1/warehouses/{created.json()['id']}"
    duplicate = await client.post(
        "/api/v1/warehouses", json={"code": "east", "name": "Again"}, headers=staff.headers
    )
    assert duplicate.status_code == 409

    response = await client.put(
        f"/api/v1/variants/{variant}/stock",
        json={"quantity": 3, "warehouse_id": created.json()["id"]},
        headers=staff.headers,
    )
    assert response.json()["available"] == 5
    fetched = await client.get(f"/api/v1/variants/{variant}/stock", headers=staff.headers)
    assert fetched.json() == response.json()


async def test_stock_endpoints_refuse_bad_input_and_non_staff(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    staff = await create_user(database, settings, Role.STAFF)
    buyer = await create_user(database, settings)
    variant = await create_variant(database)
    url = f"/api/v1/variants/{variant}/stock"

    assert (await client.put(url, json={"quantity": 1}, headers=buyer.headers)).status_code == 403
    assert (await client.put(url, json={"quantity": 1})).status_code == 401
    negative = await client.put(url, json={"quantity": -1}, headers=staff.headers)
    assert negative.status_code == 422
    text = await client.put(url, json={"quantity": "5"}, headers=staff.headers)
    assert text.status_code == 422
    missing = await client.put(
        f"/api/v1/variants/{uuid.uuid4()}/stock", json={"quantity": 1}, headers=staff.headers
    )
    assert missing.status_code == 404
    nowhere = await client.put(
        url, json={"quantity": 1, "warehouse_id": str(uuid.uuid4())}, headers=staff.headers
    )
    assert nowhere.status_code == 404


async def test_a_reservation_summing_past_the_column_is_refused(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    staff = await create_user(database, settings, Role.STAFF)
    variant_id = await create_variant(database, stock=5)
    line = {"variant_id": str(variant_id), "quantity": 1_000_000_000}
    response = await client.post(
        "/api/v1/stock-reservations",
        json={"reference_id": str(uuid.uuid4()), "lines": [line, line, line]},
        headers=staff.headers,
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "quantity_too_large"
