"""The demo catalog: a few hundred products in English and Chinese, generated in code.

Everything is derived from fixed tables and a seeded generator, so every run produces the same
slugs and SKUs; loading skips what already exists, so it is idempotent.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import HttpUrl
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from agora.catalog import repository, service
from agora.catalog.models import ProductStatus
from agora.catalog.schemas import CategoryCreate, ProductCreate, VariantCreate
from agora.core.db import Database
from agora.core.money import Money

PRODUCTS_PER_CATEGORY = 36
_SEED = 20_261_124
_BATCH = 25


@dataclass(frozen=True)
class DemoCategory:
    """A leaf category and how its products are named and varied."""

    slug: str
    name: str
    parent: str
    nouns: tuple[tuple[str, str], ...]  # (English, Chinese)
    brands: tuple[tuple[str, str], ...]
    attributes: dict[str, tuple[Any, ...]]
    price_range: tuple[int, int]  # minor units


PARENTS = {
    "electronics": "Electronics 电子产品",
    "clothing": "Clothing 服装",
    "home": "Home 家居",
}
CATEGORIES = (
    DemoCategory(
        "phones", "Phones 手机", "electronics",
        (("Smartphone", "智能手机"), ("5G Phone", "5G手机"), ("Foldable Phone", "折叠屏手机")),
        (("Huawei", "华为"), ("Xiaomi", "小米"), ("Oppo", "欧珀"), ("Vivo", "维沃")),
        {"storage_gb": (128, 256, 512), "color": ("black", "white", "blue")}, (99_900, 899_900),
    ),
    DemoCategory(
        "headphones", "Headphones 耳机", "electronics",
        (("Wireless Earbuds", "无线蓝牙耳机"), ("Noise Cancelling Headphones", "降噪耳机")),
        (("Huawei", "华为"), ("Xiaomi", "小米"), ("Sony", "索尼"), ("Edifier", "漫步者")),
        {"color": ("black", "white", "green")}, (9_900, 199_900),
    ),
    DemoCategory(
        "laptops", "Laptops 笔记本电脑", "electronics",
        (("Laptop", "笔记本电脑"), ("Ultrabook", "轻薄本"), ("Gaming Laptop", "游戏本")),
        (("Lenovo", "联想"), ("Huawei", "华为"), ("Asus", "华硕"), ("Dell", "戴尔")),
        {"ram_gb": (16, 32), "storage_gb": (512, 1024)}, (399_900, 1_599_900),
    ),
    DemoCategory(
        "shoes", "Shoes 鞋", "clothing",
        (("Running Shoes", "跑步鞋"), ("Basketball Shoes", "篮球鞋"), ("Sneakers", "运动鞋")),
        (("Anta", "安踏"), ("Li-Ning", "李宁"), ("Xtep", "特步"), ("Peak", "匹克")),
        {"size": (39, 40, 41, 42, 43, 44), "color": ("red", "black")}, (19_900, 129_900),
    ),
    DemoCategory(
        "jackets", "Jackets 夹克", "clothing",
        (("Down Jacket", "羽绒服"), ("Rain Jacket", "冲锋衣"), ("Fleece Jacket", "抓绒外套")),
        (("Bosideng", "波司登"), ("Semir", "森马"), ("Anta", "安踏")),
        {"size": ("S", "M", "L", "XL"), "color": ("navy", "olive")}, (29_900, 159_900),
    ),
    DemoCategory(
        "t-shirts", "T-Shirts T恤", "clothing",
        (("Cotton T-Shirt", "纯棉T恤"), ("Sports T-Shirt", "运动T恤")),
        (("Uniqlo", "优衣库"), ("Semir", "森马"), ("Muji", "无印良品")),
        {"size": ("S", "M", "L"), "color": ("white", "grey", "black")}, (4_900, 19_900),
    ),
    DemoCategory(
        "kitchen", "Kitchen 厨房", "home",
        (("Electric Kettle", "电热水壶"), ("Rice Cooker", "电饭煲"), ("Air Fryer", "空气炸锅")),
        (("Midea", "美的"), ("Supor", "苏泊尔"), ("Joyoung", "九阳")),
        {"capacity_l": (1.5, 3, 5), "color": ("white", "silver")}, (9_900, 99_900),
    ),
    DemoCategory(
        "lamps", "Lamps 灯具", "home",
        (("Desk Lamp", "台灯"), ("Floor Lamp", "落地灯"), ("Smart Bulb", "智能灯泡")),
        (("Philips", "飞利浦"), ("Xiaomi", "小米"), ("Opple", "欧普")),
        {"color_temperature_k": (2700, 4000, 6500)}, (5_900, 59_900),
    ),
)  # fmt: skip


def demo_products() -> Iterator[tuple[str, ProductCreate]]:
    """Every demo product with the slug of its category, in a fixed order."""
    generator = random.Random(_SEED)  # noqa: S311 - reproducible demo data, not a secret
    for category in CATEGORIES:
        for number in range(PRODUCTS_PER_CATEGORY):
            yield category.slug, _product(category, number, generator)


def _product(category: DemoCategory, number: int, generator: random.Random) -> ProductCreate:
    english_noun, chinese_noun = category.nouns[number % len(category.nouns)]
    english_brand, chinese_brand = category.brands[number % len(category.brands)]
    model = f"{chr(ord('A') + number % 26)}{10 + number}"
    in_chinese = number % 2 == 0
    name = (
        f"{chinese_brand}{chinese_noun} {model}"
        if in_chinese
        else f"{english_brand} {english_noun} {model}"
    )
    description = (
        f"<p>{chinese_brand}{chinese_noun}，型号 {model}。品质可靠，送货快。</p>"
        if in_chinese
        else f"<p>The {english_brand} {english_noun} {model}: <strong>reliable</strong>, "
        "well made and fast to ship.</p>"
    )
    low, high = category.price_range
    base_price = generator.randrange(low, high, 100)
    names = list(category.attributes)
    combinations = list(itertools.product(*category.attributes.values()))
    chosen = generator.sample(combinations, k=min(len(combinations), generator.randint(1, 4)))
    slug = f"{category.slug}-{number:03d}"
    variants = [
        VariantCreate(
            sku=f"{slug.upper()}-{index}",
            price=Money(amount=base_price + index * 1_000, currency="CNY"),
            attributes=dict(zip(names, values, strict=True)),
            weight_grams=generator.randrange(100, 3_000, 50),
        )
        for index, values in enumerate(chosen)
    ]
    return ProductCreate(
        name=name,
        slug=slug,
        description=description,
        status=ProductStatus.PUBLISHED,
        images=[HttpUrl(f"https://images.example.com/agora/{slug}.jpg")],
        variants=variants,
    )


async def load_demo(
    database: Database,
    redis: Redis,
    *,
    only_if_empty: bool = False,
    on_product: Callable[[], None] = lambda: None,
) -> int:
    """Create the demo categories and products that do not exist yet; returns how many products.

    With ``only_if_empty``, nothing is loaded into a catalog that already has products.
    """
    async with database.unit_of_work() as session:
        if only_if_empty and await repository.any_product(session):
            return 0
        category_ids = await _ensure_categories(session, redis)
    created = 0
    products = list(demo_products())
    for start in range(0, len(products), _BATCH):
        async with database.unit_of_work() as session:
            for category_slug, product in products[start : start + _BATCH]:
                if not await repository.product_slug_taken(session, product.slug or ""):
                    data = product.model_copy(update={"category_id": category_ids[category_slug]})
                    await service.create_product(session, redis, data)
                    created += 1
                on_product()
    return created


async def _ensure_categories(session: AsyncSession, redis: Redis) -> dict[str, Any]:
    ids: dict[str, Any] = {}
    leaves = [(c.slug, c.name, c.parent) for c in CATEGORIES]
    for slug, name, parent in [*((s, n, None) for s, n in PARENTS.items()), *leaves]:
        existing = await repository.category_by_slug(session, slug)
        if existing is None:
            data = CategoryCreate(name=name, slug=slug, parent_id=ids.get(parent or ""))
            ids[slug] = (await service.create_category(session, redis, data)).id
        else:
            ids[slug] = existing.id
    return ids
