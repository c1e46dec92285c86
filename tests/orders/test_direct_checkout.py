"""The requests of a checkout answered before routing (``orders/direct_checkout.py``,
``cart/direct_cart.py``) answer what their routes answer, and the others still reach the routes.

Whether a route handled a request is seen from the app-wide dependency every route runs
(``refuse_unstorable_input``), counted through ``dependency_overrides``.
"""

from __future__ import annotations

import httpx

from agora.core.db import Database
from agora.settings import Settings
from tests.factories import create_user, create_variant
from tests.orders.support import ADDRESS, fill_cart, order_cart

ORDERS = "/api/v1/orders"
# Differ on every answer: the request id, and the order's id in the body and ``Location``.
_PER_ANSWER = frozenset({"x-request-id", "location", "content-length"})


def _shape(response: httpx.Response) -> tuple[int, dict[str, str]]:
    return response.status_code, {
        name: value for name, value in response.headers.items() if name not in _PER_ANSWER
    }


async def test_a_checkout_answered_before_routing_answers_as_the_route_does(
    client: httpx.AsyncClient, database: Database, settings: Settings, routed: list[str]
) -> None:
    buyer = await create_user(database, settings)
    variant = await create_variant(database, stock=10)
    direct_cart = await fill_cart(client, buyer, {variant: 1})
    direct = await order_cart(client, buyer, direct_cart, key="first")
    routed_cart = await fill_cart(client, buyer, {variant: 2})
    body = {"cart_id": routed_cart, "shipping_address": ADDRESS}
    through_route = await client.post(ORDERS + "?via=route", json=body, headers=buyer.headers)
    replay = await client.post(
        ORDERS + "?via=route",
        json={"cart_id": direct_cart, "shipping_address": ADDRESS},
        headers={**buyer.headers, "Idempotency-Key": "first"},
    )

    assert routed == [f"POST {ORDERS}", f"POST {ORDERS}"]  # the two with a query string
    assert direct.status_code == through_route.status_code == 201
    assert _shape(direct) == _shape(through_route)
    assert direct.headers["location"] == f"{ORDERS}/{direct.json()['id']}"
    assert [line["quantity"] for line in through_route.json()["lines"]] == [2]
    assert replay.json() == direct.json()
    assert replay.headers["idempotent-replayed"] == "true"


async def test_a_refusal_before_routing_is_the_routes_refusal(
    client: httpx.AsyncClient, database: Database, settings: Settings, routed: list[str]
) -> None:
    buyer = await create_user(database, settings)
    cart_id = await fill_cart(client, buyer, {await create_variant(database, stock=10): 1})
    assert (await order_cart(client, buyer, cart_id)).status_code == 201

    again = await order_cart(client, buyer, cart_id)
    again_on_route = await client.post(
        ORDERS + "?via=route",
        json={"cart_id": cart_id, "shipping_address": ADDRESS},
        headers=buyer.headers,
    )

    assert routed == [f"POST {ORDERS}"]
    assert _shape(again) == _shape(again_on_route)
    assert again.content == again_on_route.content
    assert again.json()["code"] == "cart_not_active"


async def test_requests_that_are_not_well_formed_reach_the_routes(
    client: httpx.AsyncClient, database: Database, settings: Settings, routed: list[str]
) -> None:
    buyer = await create_user(database, settings)
    variant = await create_variant(database, stock=10)
    anonymous = await client.post("/api/v1/carts")
    token = {"X-Cart-Token": anonymous.json()["token"]}
    items = f"/api/v1/carts/{anonymous.json()['id']}/items"
    added = await client.post(items, json={"variant_id": str(variant)}, headers=token)
    merged = await client.post("/api/v1/carts", headers={**buyer.headers, **token})
    body = {"cart_id": merged.json()["id"], "shipping_address": ADDRESS}
    unauthenticated = await client.post(ORDERS, json=body)
    invalid = await client.post(ORDERS, json={**body, "cart_id": "nope"}, headers=buyer.headers)

    assert [anonymous.status_code, added.status_code, merged.status_code] == [201, 201, 201]
    assert [item["quantity"] for item in merged.json()["items"]] == [1]
    assert (unauthenticated.status_code, invalid.status_code) == (401, 422)
    assert routed == [
        "POST /api/v1/carts",
        f"POST {items}",
        "POST /api/v1/carts",
        f"POST {ORDERS}",
        f"POST {ORDERS}",
    ]
