"""Carts over HTTP: anonymous carts and their token, user carts, validation, merge on login."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import update

from agora.catalog.models import Product, ProductStatus, ProductVariant
from agora.core.db import Database
from agora.settings import Settings
from tests.factories import create_user, create_variant, set_stock


async def _anonymous_cart(client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    response = await client.post("/api/v1/carts")
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"/api/v1/carts/{body['id']}"
    return body["id"], {"X-Cart-Token": body["token"]}


async def test_anonymous_cart_is_reached_with_its_token_only(
    client: httpx.AsyncClient, database: Database
) -> None:
    variant = await create_variant(database, price=1250, stock=5)
    cart_id, token = await _anonymous_cart(client)

    added = await client.post(
        f"/api/v1/carts/{cart_id}/items",
        json={"variant_id": str(variant), "quantity": 2},
        headers=token,
    )

    assert added.status_code == 201, added.text
    body = added.json()
    assert body["subtotal"] == {"amount": 2500, "currency": "EUR"}
    assert body["token"] is None
    [item] = body["items"]
    assert added.headers["location"] == f"/api/v1/carts/{cart_id}/items/{item['id']}"
    assert (await client.get(f"/api/v1/carts/{cart_id}")).status_code == 404
    wrong = {"X-Cart-Token": "not-the-token"}
    assert (await client.get(f"/api/v1/carts/{cart_id}", headers=wrong)).status_code == 404
    again = await client.post("/api/v1/carts", headers=token)
    assert (again.status_code, again.json()["id"]) == (200, cart_id)


async def test_cart_shows_current_prices_and_adds_up_lines(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    buyer = await create_user(database, settings)
    variant = await create_variant(database, price=1000, stock=10)
    cart_id = (await client.post("/api/v1/carts", headers=buyer.headers)).json()["id"]
    for _ in range(2):
        await client.post(
            f"/api/v1/carts/{cart_id}/items",
            json={"variant_id": str(variant), "quantity": 2},
            headers=buyer.headers,
        )
    async with database.unit_of_work() as session:
        row = await session.get(ProductVariant, variant)
        assert row is not None
        row.price_amount = 1100

    cart = (await client.get(f"/api/v1/carts/{cart_id}", headers=buyer.headers)).json()

    [item] = cart["items"]
    assert item["quantity"] == 4
    assert item["unit_price"] == {"amount": 1100, "currency": "EUR"}
    assert cart["subtotal"] == {"amount": 4400, "currency": "EUR"}


async def test_quantities_are_checked_against_variant_and_stock(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    buyer = await create_user(database, settings)
    euro = await create_variant(database, stock=3)
    dollar = await create_variant(database, currency="USD", stock=3)
    draft = await create_variant(database, stock=3, status=ProductStatus.DRAFT)
    cart_id = (await client.post("/api/v1/carts", headers=buyer.headers)).json()["id"]
    url = f"/api/v1/carts/{cart_id}/items"

    async def add(variant: uuid.UUID, quantity: object) -> httpx.Response:
        return await client.post(
            url, json={"variant_id": str(variant), "quantity": quantity}, headers=buyer.headers
        )

    too_many = await add(euro, 4)
    assert (too_many.status_code, too_many.json()["code"]) == (409, "insufficient_stock")
    assert too_many.json()["available"] == 3
    assert (await add(euro, 0)).status_code == 422
    assert (await add(euro, 100)).status_code == 422
    assert (await add(euro, "2")).status_code == 422
    unavailable = await add(draft, 1)
    assert (unavailable.status_code, unavailable.json()["code"]) == (422, "variant_unavailable")
    assert (await add(uuid.uuid4(), 1)).json()["code"] == "variant_unavailable"
    assert (await add(euro, 3)).status_code == 201
    mixed = await add(dollar, 1)
    assert (mixed.status_code, mixed.json()["code"]) == (422, "currency_mismatch")
    cart = (await client.get(f"/api/v1/carts/{cart_id}", headers=buyer.headers)).json()
    assert [item["quantity"] for item in cart["items"]] == [3]


async def test_update_and_remove_items(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    buyer = await create_user(database, settings)
    variant = await create_variant(database, stock=5)
    cart_id = (await client.post("/api/v1/carts", headers=buyer.headers)).json()["id"]
    added = await client.post(
        f"/api/v1/carts/{cart_id}/items",
        json={"variant_id": str(variant), "quantity": 1},
        headers=buyer.headers,
    )
    item_url = f"/api/v1/carts/{cart_id}/items/{added.json()['items'][0]['id']}"

    patched = await client.patch(item_url, json={"quantity": 5}, headers=buyer.headers)
    over = await client.patch(item_url, json={"quantity": 6}, headers=buyer.headers)
    await set_stock(database, variant, 5)
    deleted = await client.delete(item_url, headers=buyer.headers)
    gone = await client.delete(item_url, headers=buyer.headers)

    assert patched.json()["items"][0]["quantity"] == 5
    assert over.status_code == 409
    assert deleted.status_code == 204
    assert gone.status_code == 404
    cart = (await client.get(f"/api/v1/carts/{cart_id}", headers=buyer.headers)).json()
    assert (cart["items"], cart["subtotal"]) == ([], None)


async def test_another_users_cart_is_404(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    alice, bob = await create_user(database, settings), await create_user(database, settings)
    variant = await create_variant(database, stock=5)
    cart_id = (await client.post("/api/v1/carts", headers=alice.headers)).json()["id"]

    seen = await client.get(f"/api/v1/carts/{cart_id}", headers=bob.headers)
    added = await client.post(
        f"/api/v1/carts/{cart_id}/items",
        json={"variant_id": str(variant), "quantity": 1},
        headers=bob.headers,
    )

    assert seen.status_code == added.status_code == 404


async def test_a_user_has_one_cart_and_anonymous_items_merge_on_login(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    buyer = await create_user(database, settings)
    shared = await create_variant(database, stock=200)
    only_anonymous = await create_variant(database, stock=5)
    first = await client.post("/api/v1/carts", headers=buyer.headers)
    user_cart = first.json()["id"]
    await client.post(
        f"/api/v1/carts/{user_cart}/items",
        json={"variant_id": str(shared), "quantity": 60},
        headers=buyer.headers,
    )
    anonymous_cart, token = await _anonymous_cart(client)
    for variant, quantity in ((shared, 50), (only_anonymous, 2)):
        await client.post(
            f"/api/v1/carts/{anonymous_cart}/items",
            json={"variant_id": str(variant), "quantity": quantity},
            headers=token,
        )

    merged = await client.post("/api/v1/carts", headers={**buyer.headers, **token})

    assert first.status_code == 201
    assert (merged.status_code, merged.json()["id"]) == (200, user_cart)
    quantities = {item["variant_id"]: item["quantity"] for item in merged.json()["items"]}
    assert quantities == {str(shared): 99, str(only_anonymous): 2}
    old = await client.get(f"/api/v1/carts/{anonymous_cart}", headers=token)
    assert old.json()["status"] == "merged"
    refused = await client.post(
        f"/api/v1/carts/{anonymous_cart}/items",
        json={"variant_id": str(shared), "quantity": 1},
        headers=token,
    )
    assert (refused.status_code, refused.json()["code"]) == (409, "cart_not_active")


async def test_merge_on_login_keeps_one_currency_and_only_items_on_sale(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    buyer = await create_user(database, settings)
    euros = await create_variant(database, currency="EUR", stock=10)
    dollars = await create_variant(database, currency="USD", stock=10)
    withdrawn = await create_variant(database, currency="EUR", stock=10)
    kept = await create_variant(database, currency="EUR", stock=10)
    user_cart = (await client.post("/api/v1/carts", headers=buyer.headers)).json()["id"]
    await client.post(
        f"/api/v1/carts/{user_cart}/items",
        json={"variant_id": str(euros), "quantity": 1},
        headers=buyer.headers,
    )
    # Two anonymous carts each valid on its own; merged into a EUR cart, the USD line cannot go.
    anonymous_cart, token = await _anonymous_cart(client)
    for variant in (withdrawn, kept):
        added = await client.post(
            f"/api/v1/carts/{anonymous_cart}/items",
            json={"variant_id": str(variant), "quantity": 1},
            headers=token,
        )
        assert added.status_code == 201
    other_cart, other_token = await _anonymous_cart(client)
    await client.post(
        f"/api/v1/carts/{other_cart}/items",
        json={"variant_id": str(dollars), "quantity": 1},
        headers=other_token,
    )
    async with database.unit_of_work() as session:
        variant = await session.get(ProductVariant, withdrawn)
        assert variant is not None
        await session.execute(
            update(Product)
            .where(Product.id == variant.product_id)
            .values(status=ProductStatus.DRAFT)
        )

    merged = await client.post("/api/v1/carts", headers={**buyer.headers, **token})
    merged_again = await client.post("/api/v1/carts", headers={**buyer.headers, **other_token})

    assert {item["variant_id"] for item in merged.json()["items"]} == {str(euros), str(kept)}
    assert merged_again.json()["items"] == merged.json()["items"]
    assert merged_again.json()["subtotal"]["currency"] == "EUR"
