"""Product lists: filters on category, price and attributes, sorting and cursor pages."""

from __future__ import annotations

from typing import Any

import httpx

from agora.core.security import Role
from agora.settings import Settings
from tests.catalog.support import auth, create_category, create_product, variant


async def _slugs(client: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await client.get("/api/v1/products", params=params)
    assert response.status_code == 200, response.text
    return [item["slug"] for item in response.json()["items"]]


async def test_category_filter_includes_descendants(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    clothing = await create_category(client, settings, "Clothing")
    shoes = await create_category(client, settings, "Shoes", clothing["id"])
    food = await create_category(client, settings, "Food")
    await create_product(client, settings, "Sneaker", category_id=shoes["id"])
    await create_product(client, settings, "Jacket", category_id=clothing["id"])
    await create_product(client, settings, "Apple", category_id=food["id"])
    assert sorted(await _slugs(client, category="clothing")) == ["jacket", "sneaker"]
    assert await _slugs(client, category="shoes") == ["sneaker"]
    assert await _slugs(client, category="unknown") == []


async def test_price_and_attribute_filters_match_one_variant(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await create_product(
        client,
        settings,
        "Phone A",
        variants=[variant("A-128", 50000, storage=128, color="black"), variant("A-256", 70000)],
    )
    await create_product(
        client, settings, "Phone B", variants=[variant("B-64", 30000, storage=64, color="white")]
    )
    assert await _slugs(client, min_price=60000) == ["phone-a"]
    assert await _slugs(client, max_price=40000) == ["phone-b"]
    assert await _slugs(client, **{"attr.storage": "128"}) == ["phone-a"]
    assert await _slugs(client, **{"attr.color": "white"}) == ["phone-b"]
    assert await _slugs(client, **{"attr.color": "black", "max_price": 40000}) == []
    assert await _slugs(client, **{"attr.color": "black", "attr.storage": "64"}) == []
    bad_range = await client.get("/api/v1/products", params={"min_price": 5, "max_price": 1})
    assert bad_range.status_code == 422


async def test_sorting_and_cursor_pages_visit_every_product_once(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    prices = [500, 100, 300, 200, 400, 100, 300]
    for n, price in enumerate(prices):
        await create_product(client, settings, f"Item {n}", variants=[variant(f"I-{n}", price)])
    for sort, expected in [
        ("price_asc", sorted(prices)),
        ("price_desc", sorted(prices, reverse=True)),
    ]:
        seen: list[int] = []
        cursor = None
        while True:
            params = {"sort": sort, "limit": "3", **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/api/v1/products", params=params)).json()
            seen += [item["price_from"]["amount"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == expected
    newest = await _slugs(client, limit=100)
    assert newest == [f"item-{n}" for n in reversed(range(len(prices)))]
    by_name = await _slugs(client, sort="name")
    assert by_name == sorted(by_name)


async def test_bad_list_parameters_are_422(client: httpx.AsyncClient) -> None:
    for params in [
        {"limit": "1000"},
        {"limit": "0"},
        {"limit": "ten"},
        {"sort": "random"},
        {"cursor": "not-a-cursor"},
        {"min_price": "-1"},
    ]:
        response = await client.get("/api/v1/products", params=params)
        assert response.status_code == 422, params
        assert response.headers["content-type"] == "application/problem+json"


async def test_a_cursor_is_only_valid_for_its_order(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    for n in range(3):
        await create_product(client, settings, f"Thing {n}")
    cursor = (await client.get("/api/v1/products", params={"limit": 1})).json()["next_cursor"]
    assert cursor
    response = await client.get("/api/v1/products", params={"cursor": cursor, "sort": "name"})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_cursor"


async def test_staff_list_drafts_and_nobody_else_sees_them(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await create_product(client, settings, "Spring Jacket", status="draft")
    await create_product(client, settings, "Winter Coat")
    drafts = await client.get("/api/v1/products?status=draft", headers=auth(settings))
    assert drafts.status_code == 200, drafts.text
    assert [item["name"] for item in drafts.json()["items"]] == ["Spring Jacket"]
    assert drafts.headers["cache-control"] == "private, no-store"

    published = await client.get("/api/v1/products", headers=auth(settings))
    assert [item["name"] for item in published.json()["items"]] == ["Winter Coat"]
    for headers in ({}, auth(settings, Role.CUSTOMER)):
        refused = await client.get("/api/v1/products?status=draft", headers=headers)
        assert refused.status_code == 403
        assert refused.json()["code"] == "staff_only"
