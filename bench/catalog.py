"""Catalog reads: product detail (cache hit, cache miss) and search, against ``/healthz``.

Two stages, each with its own ``/healthz`` baseline measured on the same server in the same run:
the catalog at 10,000 products, then at 100,000. Products are bulk-inserted with COPY (two
variants each, English and Chinese names) and indexed the way the application indexes them.
"Uncached" scenarios make every request a miss of both cache levels: detail walks product ids
it has never asked for, and search varies ``min_price`` (below every price) so each request has
its own cache key while matching what the plain search matches.

    .venv/bin/python -m bench.catalog [--concurrency 32] [--duration 5]
"""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections.abc import Iterator

import aiohttp
import asyncpg

from agora.catalog.demo import CATEGORIES
from agora.catalog.search import for_index
from agora.catalog.service import CATEGORIES_TAG, LISTS_TAG
from agora.core.cache import invalidate
from agora.core.redis import create_redis
from agora.settings import get_settings
from bench.harness import (
    LoadResult,
    Request,
    agora_env,
    agora_server,
    asyncpg_dsn,
    bench_services,
    free_port,
    get,
    load_arguments,
    load_options,
    print_table,
    run_load,
)

SEARCH_TERMS = ["手机", "phone", "耳机", "running shoes", "台灯", "laptop", "华为", "jacket"]
_BATCH = 10_000
_HIT_SET = 100


def product_rows(start: int, count: int) -> Iterator[tuple[uuid.UUID, str, str, list[str], int]]:
    """Products ``start .. start + count``: id, name, slug, attribute values, cheapest price."""
    generator = random.Random(start)
    for number in range(start, start + count):
        category = CATEGORIES[number % len(CATEGORIES)]
        english_noun, chinese_noun = category.nouns[number % len(category.nouns)]
        english_brand, chinese_brand = category.brands[(number // 7) % len(category.brands)]
        name = (
            f"{chinese_brand}{chinese_noun} {number}"
            if number % 2 == 0
            else f"{english_brand} {english_noun} {number}"
        )
        values = [str(generator.choice(options)) for options in category.attributes.values()]
        price = generator.randrange(*category.price_range, 100)
        yield uuid.uuid4(), name, f"bench-{number}", values, price


async def grow_catalog(dsn: str, start: int, target: int) -> None:
    """Bulk-insert products ``start .. target`` with two variants each, then index them.

    Then vacuum and analyze the two tables, as autovacuum does within a minute or so of a bulk
    change: measured straight after the load, a search also read the rows each batch's update
    left dead and the entries the full-text index still held in its pending list (GIN's fast
    update), which it scans whole on every search until they are merged, at a cost growing with
    the load, not with the catalog a shop keeps."""
    connection = await asyncpg.connect(dsn)
    try:
        for batch_start in range(start, target, _BATCH):
            rows = list(product_rows(batch_start, min(_BATCH, target - batch_start)))
            await _copy_batch(connection, rows)
        await connection.execute("VACUUM (ANALYZE) products, product_variants")
    finally:
        await connection.close()


async def _copy_batch(
    connection: asyncpg.Connection, rows: list[tuple[uuid.UUID, str, str, list[str], int]]
) -> None:
    await connection.copy_records_to_table(
        "products",
        columns=["id", "name", "slug", "description", "status", "images"],
        records=[(pid, name, slug, "", "published", "[]") for pid, name, slug, _, _ in rows],
    )
    await connection.copy_records_to_table(
        "product_variants",
        columns=[
            "id",
            "product_id",
            "sku",
            "price_amount",
            "currency",
            "attributes",
            "weight_grams",
        ],
        records=[
            (uuid.uuid4(), pid, f"{slug}-{n}".upper(), price + n * 1000, "CNY", "{}", 500)
            for pid, _, slug, _, price in rows
            for n in range(2)
        ],
    )
    names = [for_index(name) for _, name, _, _, _ in rows]
    attributes = [for_index(" ".join(values)) for _, _, _, values, _ in rows]
    # The weighting of repository.refresh_derived_columns, for a whole batch in one statement.
    await connection.execute(
        """
        UPDATE products p SET
          search_vector = setweight(to_tsvector('english', u.name_en), 'A')
            || setweight(to_tsvector('simple', u.name_zh), 'A')
            || setweight(to_tsvector('english', u.attributes_en), 'B'),
          price_min_amount = u.price
        FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bigint[])
          AS u(id, name_en, name_zh, attributes_en, price)
        WHERE p.id = u.id
        """,
        [row[0] for row in rows],
        [text.english for text in names],
        [text.chinese for text in names],
        [text.english for text in attributes],
        [row[4] for row in rows],
    )


def cycling(paths: list[str]) -> Request:
    """A request that GETs the paths in turn (cache hits once warm)."""

    async def send(session: aiohttp.ClientSession, sequence: int) -> int:
        async with session.get(paths[sequence % len(paths)]) as response:
            await response.read()
            return response.status

    return send


def uncached_search() -> Request:
    """Search requests that each have their own cache key."""
    counter = itertools.count(1)
    paths = (
        f"/api/v1/products?q={SEARCH_TERMS[n % len(SEARCH_TERMS)]}&min_price={n % 900 + 1}"
        f"&limit={n // 900 % 50 + 1}"
        for n in counter
    )
    return each_once(paths)


def each_once(paths: Iterator[str]) -> Request:
    """A request that GETs each path once, never repeating (each one a cache miss)."""

    async def send(session: aiohttp.ClientSession, _: int) -> int:
        path = next(paths, None)
        if path is None:
            raise RuntimeError("ran out of paths never asked for; lower --duration")
        async with session.get(path) as response:
            await response.read()
            return response.status

    return send


async def product_ids(dsn: str) -> list[uuid.UUID]:
    """Every product id, shuffled reproducibly."""
    connection = await asyncpg.connect(dsn)
    try:
        ids = [row[0] for row in await connection.fetch("SELECT id FROM products ORDER BY slug")]
    finally:
        await connection.close()
    random.Random(1).shuffle(ids)
    return ids


async def reset(dsn: str, redis_url: str) -> None:
    """Empty the catalog tables and drop every cached catalog list."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("TRUNCATE products, product_variants, categories CASCADE")
    finally:
        await connection.close()
    await drop_lists(redis_url)


async def drop_lists(redis_url: str) -> None:
    """Invalidate cached lists after a bulk insert that bypassed the service."""
    redis = create_redis(redis_url, get_settings())
    try:
        await invalidate(redis, [LISTS_TAG, CATEGORIES_TAG])
    finally:
        await redis.aclose()


def main() -> None:
    """Build the catalog in two sizes and measure each; print one table per size."""
    args = load_arguments(__doc__).parse_args()
    load = load_options(args)
    urls = bench_services()
    dsn = asyncpg_dsn(urls)
    asyncio.run(reset(dsn, urls.redis_url))
    env = agora_env(urls)
    size = 0
    search_p50: dict[int, float] = {}
    for target in (10_000, 100_000):
        asyncio.run(grow_catalog(dsn, size, target))
        asyncio.run(drop_lists(urls.redis_url))
        size = target
        ids = asyncio.run(product_ids(dsn))
        with agora_server(env, free_port()) as url:
            baseline = asyncio.run(
                run_load("agora /healthz (baseline)", url, get("/healthz"), **load)
            )
            results: list[LoadResult] = []
            hot = [f"/api/v1/products/{product_id}" for product_id in ids[:_HIT_SET]]
            cold = [f"/api/v1/products/{product_id}" for product_id in ids[_HIT_SET:]]
            results.append(
                asyncio.run(run_load("product detail, cache hit", url, cycling(hot), **load))
            )
            results.append(
                asyncio.run(
                    run_load("product detail, cache miss", url, each_once(iter(cold)), **load)
                )
            )
            searches = [f"/api/v1/products?q={term}" for term in SEARCH_TERMS]
            results.append(
                asyncio.run(run_load("search, cache hit", url, cycling(searches), **load))
            )
            results.append(
                asyncio.run(run_load("search, uncached", url, uncached_search(), **load))
            )
        search_p50[size] = results[-1].median
        print_table(
            f"Catalog at {size:,} products: 1 API process, {args.concurrency} clients, "
            f"{args.duration:.0f}s each",
            results,
            baseline,
        )
    growth = search_p50[100_000] / search_p50[10_000]
    print(
        f"Uncached search p50: {search_p50[10_000]:.2f} ms at 10,000 products, "
        f"{search_p50[100_000]:.2f} ms at 100,000: {growth:.2f}x "
        f"(target ≤ 2x: {'met' if growth <= 2 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
