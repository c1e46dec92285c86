"""Helpers of the order tests: a shipping address, filling a cart, checking out."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.factories import Account

ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 St James's Square",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country": "GB",
}


async def fill_cart(
    client: httpx.AsyncClient, account: Account, items: dict[uuid.UUID, int]
) -> str:
    """The buyer's cart holding ``items`` (variant id → quantity); its id."""
    opened = await client.post("/api/v1/carts", headers=account.headers)
    assert opened.status_code in (200, 201), opened.text
    cart_id: str = opened.json()["id"]
    for variant_id, quantity in items.items():
        added = await client.post(
            f"/api/v1/carts/{cart_id}/items",
            json={"variant_id": str(variant_id), "quantity": quantity},
            headers=account.headers,
        )
        assert added.status_code == 201, added.text
    return cart_id


async def order_cart(
    client: httpx.AsyncClient,
    account: Account,
    cart_id: str,
    *,
    key: str | None = None,
    **extra: Any,
) -> httpx.Response:
    """POST /orders for a cart (with an Idempotency-Key when given)."""
    headers = dict(account.headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    body = {"cart_id": cart_id, "shipping_address": ADDRESS, **extra}
    return await client.post("/api/v1/orders", json=body, headers=headers)


async def buy(
    client: httpx.AsyncClient, account: Account, items: dict[uuid.UUID, int], **extra: Any
) -> dict[str, Any]:
    """Fill a cart and order it; the order (asserting it was created)."""
    response = await order_cart(client, account, await fill_cart(client, account, items), **extra)
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    return order
