"""How many SQL statements a checkout sends: pinned, so a change that adds round trips shows."""

from __future__ import annotations

import uuid

import httpx

from agora.core.db import Database
from agora.settings import Settings
from tests.factories import create_user, create_variant
from tests.orders.support import ADDRESS, fill_cart, order_cart
from tests.support import QueryCounter


async def test_a_checkout_sends_eleven_statements(
    client: httpx.AsyncClient, database: Database, settings: Settings, query_counter: QueryCounter
) -> None:
    buyer = await create_user(database, settings)
    variant = await create_variant(database, stock=10)
    counts = []

    query_counter.reset()
    opened = await client.post("/api/v1/carts", headers=buyer.headers)
    counts.append(query_counter.count)
    query_counter.reset()
    item = {"variant_id": str(variant), "quantity": 1}
    added = await client.post(
        f"/api/v1/carts/{opened.json()['id']}/items", json=item, headers=buyer.headers
    )
    counts.append(query_counter.count)
    query_counter.reset()
    ordered = await client.post(
        "/api/v1/orders",
        json={"cart_id": opened.json()["id"], "shipping_address": ADDRESS},
        headers={**buyer.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    counts.append(query_counter.count)

    assert (opened.status_code, added.status_code, ordered.status_code) == (201, 201, 201)
    # Open: the cart's upsert. Add: the locked cart with its lines, the variant with its
    # available units, the new line. Order: advisory lock and stored-answer lookup of the key,
    # the cart's claim with its lines (one statement), shipping methods, the order with its
    # lines and outbox event (one statement), the reservation with its reservation and movement
    # rows (one statement), the stored answer.
    assert counts == [1, 3, 7], query_counter.statements


async def test_each_further_line_costs_the_order_one_statement(
    client: httpx.AsyncClient, database: Database, settings: Settings, query_counter: QueryCounter
) -> None:
    buyer = await create_user(database, settings)
    variants = {await create_variant(database, stock=10): 1 for _ in range(3)}
    cart_id = await fill_cart(client, buyer, variants)

    query_counter.reset()
    ordered = await order_cart(client, buyer, cart_id, key=uuid.uuid4().hex)

    assert ordered.status_code == 201, ordered.text
    # The order's lines are written with the order whatever their number: only the reservation
    # (with its reservation and movement rows) is one statement per line.
    assert query_counter.count == 6 + len(variants), query_counter.statements
