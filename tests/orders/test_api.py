"""Checkout and orders over HTTP: totals, reservations, history, cancel, staff moves."""

from __future__ import annotations

import uuid

import httpx

from agora.core.db import Database
from agora.core.security import Role
from agora.settings import Settings
from tests.factories import create_user, create_variant, stock_of
from tests.orders.support import ADDRESS, buy, fill_cart, order_cart
from tests.support import QueryCounter


async def test_checkout_freezes_prices_and_reserves_stock(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    buyer = await create_user(database, settings)
    shirt = await create_variant(database, price=2500, stock=10)
    socks = await create_variant(database, price=499, stock=3)

    response = await order_cart(client, buyer, await fill_cart(client, buyer, {shirt: 2, socks: 3}))

    assert response.status_code == 201, response.text
    order = response.json()
    assert response.headers["location"] == f"/api/v1/orders/{order['id']}"
    assert order["status"] == "pending_payment"
    assert order["subtotal"] == {"amount": 2 * 2500 + 3 * 499, "currency": "EUR"}
    assert order["total"] == order["subtotal"]
    assert order["shipping_address"]["country"] == "GB"
    assert [line["quantity"] for line in order["lines"]] == [2, 3]
    assert (await stock_of(database, shirt)).available == 8
    assert (await stock_of(database, socks)).available == 0


async def test_checked_out_cart_cannot_be_ordered_twice(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    buyer = await create_user(database, settings)
    variant = await create_variant(database, stock=10)
    cart_id = await fill_cart(client, buyer, {variant: 1})

    assert (await order_cart(client, buyer, cart_id)).status_code == 201
    again = await order_cart(client, buyer, cart_id)

    assert again.status_code == 409
    assert again.json()["code"] == "cart_not_active"
    assert (await stock_of(database, variant)).available == 9


async def test_out_of_stock_is_a_409_that_changes_nothing(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    first, second = await create_user(database, settings), await create_user(database, settings)
    plenty = await create_variant(database, stock=10)
    scarce = await create_variant(database, stock=1)
    first_cart = await fill_cart(client, first, {plenty: 1, scarce: 1})
    second_cart = await fill_cart(client, second, {plenty: 2, scarce: 1})

    assert (await order_cart(client, first, first_cart)).status_code == 201
    refused = await order_cart(client, second, second_cart)

    assert refused.status_code == 409
    assert refused.json()["code"] == "out_of_stock"
    assert refused.json()["variant_id"] == str(scarce)
    assert (await stock_of(database, plenty)).available == 9
    retried = await client.get(f"/api/v1/carts/{second_cart}", headers=second.headers)
    assert retried.json()["status"] == "active"


async def test_empty_cart_and_bad_address_are_422(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    buyer = await create_user(database, settings)
    cart_id = await fill_cart(client, buyer, {})

    empty = await order_cart(client, buyer, cart_id)
    bad_country = await client.post(
        "/api/v1/orders",
        json={"cart_id": cart_id, "shipping_address": {**ADDRESS, "country": "Britain"}},
        headers=buyer.headers,
    )

    assert empty.status_code == 422
    assert empty.json()["code"] == "cart_empty"
    assert bad_country.status_code == 422
    assert bad_country.json()["code"] == "invalid_request"


async def test_checkout_needs_a_signed_in_buyer(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/orders", json={"cart_id": str(uuid.uuid4()), "shipping_address": ADDRESS}
    )
    assert response.status_code == 401


async def test_buyer_sees_only_their_own_orders(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    alice, bob = await create_user(database, settings), await create_user(database, settings)
    staff = await create_user(database, settings, Role.STAFF)
    variant = await create_variant(database, stock=10)
    order = await buy(client, alice, {variant: 1})

    assert (
        await client.get(f"/api/v1/orders/{order['id']}", headers=alice.headers)
    ).status_code == 200
    hidden = await client.get(f"/api/v1/orders/{order['id']}", headers=bob.headers)
    assert hidden.status_code == 404
    assert hidden.json()["code"] == "order_not_found"
    cancel = await client.post(f"/api/v1/orders/{order['id']}/cancel", headers=bob.headers)
    assert cancel.status_code == 404
    assert (await client.get("/api/v1/orders", headers=bob.headers)).json()["items"] == []
    assert (
        await client.get(f"/api/v1/orders/{order['id']}", headers=staff.headers)
    ).status_code == 200


async def test_order_history_pages_newest_first_in_constant_queries(
    client: httpx.AsyncClient, database: Database, settings: Settings, query_counter: QueryCounter
) -> None:
    buyer = await create_user(database, settings)
    variant = await create_variant(database, stock=50)
    placed = [(await buy(client, buyer, {variant: 1}))["id"] for _ in range(5)]

    query_counter.reset()
    first = (await client.get("/api/v1/orders?limit=3", headers=buyer.headers)).json()
    queries_for_three = query_counter.count
    second = (
        await client.get(
            f"/api/v1/orders?limit=3&cursor={first['next_cursor']}", headers=buyer.headers
        )
    ).json()

    assert [order["id"] for order in first["items"] + second["items"]] == placed[::-1]
    assert second["next_cursor"] is None
    query_counter.reset()
    await client.get("/api/v1/orders?limit=1", headers=buyer.headers)
    assert query_counter.count == queries_for_three


async def test_invalid_cursor_is_422(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    buyer = await create_user(database, settings)
    response = await client.get("/api/v1/orders?cursor=not-a-cursor", headers=buyer.headers)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_cursor"


async def test_cancel_releases_stock_and_is_409_once_paid_or_shipped(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    buyer = await create_user(database, settings)
    staff = await create_user(database, settings, Role.STAFF)
    variant = await create_variant(database, stock=5)
    cancelled = await buy(client, buyer, {variant: 2})
    kept = await buy(client, buyer, {variant: 1})

    response = await client.post(f"/api/v1/orders/{cancelled['id']}/cancel", headers=buyer.headers)
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["cancel_reason"] == "buyer"
    assert (await stock_of(database, variant)).available == 4

    for status in ("paid", "fulfilled", "shipped"):
        moved = await client.patch(
            f"/api/v1/orders/{kept['id']}", json={"status": status}, headers=staff.headers
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["status"] == status
    refused = await client.post(f"/api/v1/orders/{kept['id']}/cancel", headers=buyer.headers)
    assert refused.status_code == 409
    assert refused.json()["code"] == "order_state_conflict"
    levels = (await stock_of(database, variant)).levels[0]
    assert (levels.quantity, levels.reserved, levels.allocated) == (4, 0, 0)


async def test_staff_moves_follow_the_state_machine(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    buyer = await create_user(database, settings)
    staff = await create_user(database, settings, Role.STAFF)
    variant = await create_variant(database, stock=5)
    order = await buy(client, buyer, {variant: 1})
    url = f"/api/v1/orders/{order['id']}"

    skipped = await client.patch(url, json={"status": "shipped"}, headers=staff.headers)
    by_buyer = await client.patch(url, json={"status": "paid"}, headers=buyer.headers)
    unknown = await client.patch(url, json={"status": "lost"}, headers=staff.headers)

    assert skipped.status_code == 409
    assert skipped.json()["order_status"] == "pending_payment"
    assert by_buyer.status_code == 403
    assert unknown.status_code == 422


async def test_staff_search_orders_by_status_and_buyer(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    alice, bob = await create_user(database, settings), await create_user(database, settings)
    staff = await create_user(database, settings, Role.STAFF)
    variant = await create_variant(database, stock=5)
    alice_order = await buy(client, alice, {variant: 1})
    bob_order = await buy(client, bob, {variant: 1})
    await client.post(f"/api/v1/orders/{bob_order['id']}/cancel", headers=bob.headers)

    by_buyer = await client.get(f"/api/v1/orders?user_id={alice.id}", headers=staff.headers)
    by_status = await client.get("/api/v1/orders?status=cancelled", headers=staff.headers)
    by_number = await client.get(
        f"/api/v1/orders?number={alice_order['number']}", headers=staff.headers
    )
    everything = await client.get("/api/v1/orders", headers=staff.headers)

    assert [o["id"] for o in by_buyer.json()["items"]] == [alice_order["id"]]
    assert [o["id"] for o in by_status.json()["items"]] == [bob_order["id"]]
    assert [o["id"] for o in by_number.json()["items"]] == [alice_order["id"]]
    assert len(everything.json()["items"]) == 2
