"""Full-text search in English and Chinese, ranked, and safe whatever the query."""

from __future__ import annotations

import httpx
import pytest

from agora.settings import Settings
from tests.catalog.support import auth, create_category, create_product, variant


async def _names(client: httpx.AsyncClient, q: str) -> list[str]:
    response = await client.get("/api/v1/products", params={"q": q})
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


async def test_chinese_words_are_found_inside_longer_words(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await create_product(client, settings, "华为智能手机 Mate 60")
    await create_product(client, settings, "小米无线蓝牙耳机")
    await create_product(client, settings, "苹果手机壳")
    assert sorted(await _names(client, "手机")) == ["华为智能手机 Mate 60", "苹果手机壳"]
    assert await _names(client, "华为手机") == ["华为智能手机 Mate 60"]
    assert await _names(client, "蓝牙耳机") == ["小米无线蓝牙耳机"]
    assert await _names(client, "华为 mate") == ["华为智能手机 Mate 60"]


async def test_english_words_are_stemmed_and_ranked(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await create_product(
        client, settings, "Leather Wallet", description="<p>Fits phones and cards.</p>"
    )
    await create_product(client, settings, "Phone Stand")
    await create_product(client, settings, "Desk Lamp")
    assert await _names(client, "phone") == ["Phone Stand", "Leather Wallet"]
    assert await _names(client, "phones -leather") == ["Phone Stand"]


async def test_variant_attributes_are_searchable(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await create_product(client, settings, "Hoodie", variants=[variant("HOOD-1", color="crimson")])
    assert await _names(client, "crimson") == ["Hoodie"]


@pytest.mark.parametrize(
    "q",
    [
        "'; DROP TABLE products; --",
        'unbalanced " quote',
        "a & | ! :* ( ) <-> \\",
        "phoen",
        "the",
        "!!!",
        "％＆（",
        "手机' OR 1=1",
    ],
)
async def test_typos_and_metacharacters_are_safe(
    client: httpx.AsyncClient, settings: Settings, q: str
) -> None:
    await create_product(client, settings, "Phone Stand")
    response = await client.get("/api/v1/products", params={"q": q})
    assert response.status_code == 200
    assert response.json()["items"] == []
    assert (await client.get("/api/v1/products")).json()["items"][0]["name"] == "Phone Stand"


async def test_search_results_page_by_relevance(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    for n in range(5):
        await create_product(client, settings, f"Kettle {n}", description="kettle " * n)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"q": "kettle", "limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/products", params=params)).json()
        seen += [item["name"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == [f"Kettle {n}" for n in range(5)]
    assert seen[0] == "Kettle 4"


async def test_a_product_is_found_by_its_categorys_name(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    footwear = await create_category(client, settings, "Footwear")
    await create_product(client, settings, "Trail Runner X", category_id=footwear["id"])
    await create_product(client, settings, "Desk Lamp")
    assert await _names(client, "footwear") == ["Trail Runner X"]

    renamed = await client.patch(
        f"/api/v1/categories/{footwear['id']}", json={"name": "运动鞋"}, headers=auth(settings)
    )
    assert renamed.status_code == 200, renamed.text
    assert await _names(client, "footwear") == []
    assert await _names(client, "运动鞋") == ["Trail Runner X"]
