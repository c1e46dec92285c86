"""Nearest pickup points: the indexed search against a sequential scan, at 100,000 points.

Both answer the same question exactly — the 10 pickup points nearest to a buyer by great-circle
distance — on the same table in the same run. The indexed one is Agora's own search
(``inventory.pickup.nearest_pickup_points``: a GiST KNN probe, then a GiST bounding-box search
ranked by haversine); the baseline computes the haversine distance of every row and sorts.
Buyers are spread over the globe, with a share near the poles and the antimeridian where the
planar index is least helpful. One query at a time, so the percentiles are one query's latency.

    .venv/bin/python -m bench.pickup [--points 100000] [--queries 300]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import time
import uuid

import asyncpg
from sqlalchemy import text

from agora.core.db import Database
from agora.inventory import pickup
from agora.inventory.geo import EARTH_RADIUS_M
from bench.harness import LoadResult, asyncpg_dsn, bench_services, print_table

CODE_PREFIX = "bench-pp-"
NEAREST = 10
SEQUENTIAL_SCAN = text(
    """
    SELECT id, 2 * CAST(:radius AS double precision) * asin(sqrt(least(1.0,
        power(sin(radians(latitude - :lat) / 2), 2)
        + cos(radians(:lat)) * cos(radians(latitude)) * power(sin(radians(longitude - :lon) / 2), 2)
    ))) AS distance_m
    FROM warehouses WHERE is_pickup_point ORDER BY distance_m, id LIMIT :limit
    """
)


def buyers(count: int, seed: int = 7) -> list[tuple[float, float]]:
    """Query points: mostly anywhere, a fifth near a pole, a fifth near the antimeridian.

    Given to the centimetre as the search takes them (``pickup.to_centimetres``), so that the
    scan answers for the very same point."""
    rng = random.Random(seed)
    points = []
    for index in range(count):
        if index % 5 == 0:
            lat, lon = rng.choice([-1, 1]) * rng.uniform(80, 90), rng.uniform(-180, 180)
        elif index % 5 == 1:
            lat, lon = rng.uniform(-60, 60), rng.choice([-1, 1]) * rng.uniform(178, 180)
        else:
            lat, lon = rng.uniform(-70, 70), rng.uniform(-180, 180)
        points.append((pickup.to_centimetres(lat), pickup.to_centimetres(lon)))
    return points


async def seed(dsn: str, count: int) -> None:
    """``count`` pickup points spread over the globe (uniform on the sphere), made once."""
    connection = await asyncpg.connect(dsn)
    try:
        have = await connection.fetchval(
            "SELECT count(*) FROM warehouses WHERE code LIKE $1", CODE_PREFIX + "%"
        )
        if have == count:
            return
        await connection.execute("DELETE FROM warehouses WHERE code LIKE $1", CODE_PREFIX + "%")
        rng = random.Random(16)
        rows = []
        for number in range(count):
            lat = math.degrees(math.asin(rng.uniform(-1, 1)))
            lon = rng.uniform(-180, 180)
            rows.append(
                (uuid.uuid4(), f"{CODE_PREFIX}{number}", f"Point {number}", True, lat, lon,
                 asyncpg.Point(lon, lat), "{}", "{}", "UTC")
            )  # fmt: skip
        columns = [
            "id", "code", "name", "is_pickup_point", "latitude", "longitude", "location",
            "address", "opening_hours", "time_zone",
        ]  # fmt: skip
        await connection.copy_records_to_table("warehouses", records=rows, columns=columns)
        await connection.execute("ANALYZE warehouses")
    finally:
        await connection.close()


async def measure(database_url: str, queries: list[tuple[float, float]]) -> list[LoadResult]:
    """Run every query both ways, checking that both give the same distances."""
    database = Database(database_url, pool_size=2)
    indexed, scanned = LoadResult("GiST KNN + box search"), LoadResult("sequential scan (baseline)")
    try:
        async with database.unit_of_work() as session:
            for lat, lon in queries:
                started = time.perf_counter()
                found = await pickup.nearest_pickup_points(session, lat, lon, limit=NEAREST)
                indexed.latencies.append(time.perf_counter() - started)
                started = time.perf_counter()
                rows = await session.execute(
                    SEQUENTIAL_SCAN,
                    {"lat": lat, "lon": lon, "limit": NEAREST, "radius": EARTH_RADIUS_M},
                )
                expected = [float(row.distance_m) for row in rows]
                scanned.latencies.append(time.perf_counter() - started)
                got = [point.distance_m for point in found]
                if any(abs(a - b) > 0.001 for a, b in zip(got, expected, strict=True)):
                    indexed.errors += 1
    finally:
        await database.dispose()
    for result in (indexed, scanned):
        result.elapsed = sum(result.latencies)
    return [indexed, scanned]


def main() -> None:
    """Seed the points, then time both searches on the same buyers."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    urls = bench_services()
    dsn = asyncpg_dsn(urls)
    asyncio.run(seed(dsn, args.points))
    indexed, scanned = asyncio.run(measure(urls.database_url, buyers(args.queries)))
    print_table(
        f"Nearest {NEAREST} of {args.points:,} pickup points, {args.queries} buyers, one query "
        "at a time (errors: answers differing from the scan)",
        [indexed],
        scanned,
    )


if __name__ == "__main__":
    main()
