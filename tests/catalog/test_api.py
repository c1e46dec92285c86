"""The catalog API: staff writes, what buyers see, validation, ETags and query counts."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from agora.catalog.models import Product, ProductVariant
from agora.core.db import Database
from agora.core.security import Role
from agora.settings import Settings
from tests.catalog.support import auth, create_category, create_product, variant
from tests.support import QueryCounter


async def test_staff_create_a_product_with_variants(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    payload = {
        "name": "Trail Running Shoe",
        "description": "<p>Light and <strong>grippy</strong>.</p>",
        "status": "published",
        "images": ["https://cdn.example.com/shoe.jpg"],
        "variants": [variant("SHOE-42-RED", 8900, size=42, color="red")],
    }
    response = await client.post("/api/v1/products", json=payload, headers=auth(settings))
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"].endswith(f"/api/v1/products/{body['id']}")
    assert body["slug"] == "trail-running-shoe"
    assert body["price_from"] == {"amount": 8900, "currency": "EUR"}
    [only] = body["variants"]
    assert only["sku"] == "SHOE-42-RED"
    assert only["attributes"] == {"size": 42, "color": "red"}
    assert only["in_stock"] is True


async def test_only_staff_may_write(client: httpx.AsyncClient, settings: Settings) -> None:
    payload = {"name": "Nope", "variants": [variant("NOPE-1")]}
    assert (await client.post("/api/v1/products", json=payload)).status_code == 401
    customer = auth(settings, Role.CUSTOMER)
    response = await client.post("/api/v1/products", json=payload, headers=customer)
    assert response.status_code == 403
    assert response.json()["code"] == "staff_only"


async def test_buyers_see_published_products_only(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    draft = await create_product(client, settings, "Secret Prototype", status="draft")
    assert (await client.get(f"/api/v1/products/{draft['id']}")).status_code == 404
    assert (await client.get("/api/v1/products")).json()["items"] == []
    staff_view = await client.get(f"/api/v1/products/{draft['id']}", headers=auth(settings))
    assert staff_view.status_code == 200
    assert staff_view.headers["cache-control"] == "private, no-store"

    published = await client.patch(
        f"/api/v1/products/{draft['id']}", json={"status": "published"}, headers=auth(settings)
    )
    assert published.status_code == 200
    assert (await client.get(f"/api/v1/products/{draft['id']}")).json()["status"] == "published"
    assert (await client.get("/api/v1/products/secret-prototype")).status_code == 200


async def test_publishing_needs_a_variant(client: httpx.AsyncClient, settings: Settings) -> None:
    response = await client.post(
        "/api/v1/products",
        json={"name": "Empty", "status": "published", "variants": []},
        headers=auth(settings),
    )
    assert response.status_code == 422
    assert response.json()["code"] == "no_variants"


async def test_duplicate_sku_and_slug_conflict(
    client: httpx.AsyncClient, settings: Settings, database: Database
) -> None:
    await create_product(client, settings, "First", slug="first", variants=[variant("SKU-1")])
    same_sku = await client.post(
        "/api/v1/products",
        json={"name": "Second", "variants": [variant("SKU-1")]},
        headers=auth(settings),
    )
    assert same_sku.status_code == 409
    assert same_sku.json()["code"] == "sku_taken"
    same_slug = await client.post(
        "/api/v1/products", json={"name": "Other", "slug": "first"}, headers=auth(settings)
    )
    assert same_slug.status_code == 409
    assert same_slug.json()["code"] == "slug_taken"
    async with database.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Product)) == 1


async def test_generated_slugs_stay_unique(client: httpx.AsyncClient, settings: Settings) -> None:
    first = await create_product(client, settings, "Desk Lamp")
    second = await create_product(client, settings, "Desk Lamp")
    chinese = await create_product(client, settings, "华为智能手机")
    assert first["slug"] == "desk-lamp"
    assert second["slug"].startswith("desk-lamp-")
    assert chinese["slug"].startswith("item-")


async def test_invalid_input_is_a_422_that_changes_nothing(
    client: httpx.AsyncClient, settings: Settings, database: Database
) -> None:
    bad_payloads = [
        {"name": "", "variants": []},
        {"name": "X", "variants": [{"sku": "A", "price": {"amount": -1, "currency": "EUR"}}]},
        {"name": "X", "variants": [{"sku": "A", "price": {"amount": 1.5, "currency": "EUR"}}]},
        {"name": "X", "variants": [{"sku": "A", "price": {"amount": 1, "currency": "EURO"}}]},
        {"name": "X", "variants": [{"sku": "bad sku!", "price": {"amount": 1, "currency": "EUR"}}]},
        {"name": "X", "images": ["javascript:alert(1)"]},
        {"name": "X", "status": "archived"},
        {"name": "X", "unknown_field": 1},
        {"name": "X", "category_id": "00000000-0000-0000-0000-000000000001"},
    ]
    for payload in bad_payloads:
        response = await client.post("/api/v1/products", json=payload, headers=auth(settings))
        assert response.status_code == 422, payload
        assert response.headers["content-type"] == "application/problem+json"
    async with database.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Product)) == 0


async def test_rich_descriptions_are_sanitised(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    payload = (
        '<p onclick="steal()">Nice<script>alert(1)</script>'
        '<a href="javascript:alert(2)">link</a><img src="https://x.test/a.png" onerror="x()">'
        '<a href="https://example.com">ok</a></p>'
    )
    product = await create_product(client, settings, "Safe", description=payload)
    description = (await client.get(f"/api/v1/products/{product['id']}")).json()["description"]
    for dangerous in ("script", "onclick", "onerror", "javascript:", "alert"):
        assert dangerous not in description
    assert '<a href="https://example.com"' in description
    assert "<p>Nice" in description


async def test_etag_answers_304_and_sets_cache_control(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    product = await create_product(client, settings, "Etag Mug")
    first = await client.get(f"/api/v1/products/{product['id']}")
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == settings.catalog_cache_control
    again = await client.get(f"/api/v1/products/{product['id']}", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    listing = await client.get("/api/v1/products")
    relisted = await client.get(
        "/api/v1/products", headers={"If-None-Match": f"W/{listing.headers['etag']}"}
    )
    assert relisted.status_code == 304

    await client.patch(
        f"/api/v1/products/{product['id']}", json={"name": "Etag Cup"}, headers=auth(settings)
    )
    changed = await client.get(f"/api/v1/products/{product['id']}", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.json()["name"] == "Etag Cup"


async def test_variants_are_added_changed_and_deleted(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    product = await create_product(client, settings, "Tee", variants=[variant("TEE-S", 1500)])
    base = f"/api/v1/products/{product['id']}"
    added = await client.post(
        f"{base}/variants", json=variant("TEE-M", 1200, size="M"), headers=auth(settings)
    )
    assert added.status_code == 201
    assert (await client.get(base)).json()["price_from"]["amount"] == 1200

    variant_id = added.json()["id"]
    changed = await client.patch(
        f"{base}/variants/{variant_id}",
        json={"price": {"amount": 1800, "currency": "EUR"}},
        headers=auth(settings),
    )
    assert changed.json()["price"] == {"amount": 1800, "currency": "EUR"}
    assert (await client.get(base)).json()["price_from"]["amount"] == 1500

    deleted = await client.delete(f"{base}/variants/{variant_id}", headers=auth(settings))
    assert deleted.status_code == 204
    [remaining] = (await client.get(base)).json()["variants"]
    last = await client.delete(f"{base}/variants/{remaining['id']}", headers=auth(settings))
    assert last.status_code == 409
    assert last.json()["code"] == "last_variant"


async def test_deleting_a_product_removes_its_variants(
    client: httpx.AsyncClient, settings: Settings, database: Database
) -> None:
    product = await create_product(client, settings, "Gone")
    assert (await client.get(f"/api/v1/products/{product['id']}")).status_code == 200
    deleted = await client.delete(f"/api/v1/products/{product['id']}", headers=auth(settings))
    assert deleted.status_code == 204
    assert (await client.get(f"/api/v1/products/{product['id']}")).status_code == 404
    async with database.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(ProductVariant)) == 0


async def test_category_tree(client: httpx.AsyncClient, settings: Settings) -> None:
    electronics = await create_category(client, settings, "Electronics")
    phones = await create_category(client, settings, "Phones", electronics["id"])
    android = await create_category(client, settings, "Android", phones["id"])

    detail = (await client.get("/api/v1/categories/phones")).json()
    assert [c["slug"] for c in detail["ancestors"]] == ["electronics"]
    assert [c["slug"] for c in detail["children"]] == ["android"]
    listed = (await client.get("/api/v1/categories")).json()["items"]
    assert [c["slug"] for c in listed] == ["electronics", "phones", "android"]

    cycle = await client.patch(
        f"/api/v1/categories/{electronics['id']}",
        json={"parent_id": android["id"]},
        headers=auth(settings),
    )
    assert cycle.status_code == 422
    assert cycle.json()["code"] == "category_cycle"
    in_use = await client.delete(f"/api/v1/categories/{phones['id']}", headers=auth(settings))
    assert in_use.status_code == 409
    assert in_use.json()["code"] == "category_has_children"
    moved = await client.patch(
        f"/api/v1/categories/{android['id']}", json={"parent_id": None}, headers=auth(settings)
    )
    assert moved.json()["parent_id"] is None
    assert (await client.get("/api/v1/categories/phones")).json()["children"] == []
    assert (await client.get("/api/v1/categories/nope")).status_code == 404


async def test_detail_takes_a_fixed_number_of_queries(
    client: httpx.AsyncClient, settings: Settings, query_counter: QueryCounter
) -> None:
    variants = [variant(f"MANY-{n}", 1000 + n, size=n) for n in range(20)]
    product = await create_product(client, settings, "Many Variants", variants=variants)
    query_counter.reset()
    by_id = await client.get(f"/api/v1/products/{product['id']}")
    assert len(by_id.json()["variants"]) == 20
    assert query_counter.count == 2  # the product with its category, then its variants
    query_counter.reset()
    await client.get("/api/v1/products/many-variants")
    assert query_counter.count == 1  # the slug; the document itself is cached
    query_counter.reset()
    await client.get(f"/api/v1/products/{product['id']}")
    assert query_counter.count == 0


async def test_a_list_page_of_50_takes_a_fixed_number_of_queries(
    client: httpx.AsyncClient, settings: Settings, query_counter: QueryCounter
) -> None:
    for n in range(55):
        variants = [variant(f"P{n}-A", 100 + n), variant(f"P{n}-B", 200 + n)]
        await create_product(client, settings, f"Product {n}", variants=variants)
    query_counter.reset()
    page = (await client.get("/api/v1/products?limit=50")).json()
    assert len(page["items"]) == 50
    assert all(len(item["variants"]) == 2 for item in page["items"])
    assert query_counter.count == 2  # the page, then the variants of all its products
