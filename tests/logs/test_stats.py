"""Stats from rollups and from lines, percentiles within 2 % of exact values; top values."""

from __future__ import annotations

import datetime as dt
import random

import httpx
import pytest
from redis.asyncio import Redis

from agora.core.db import Database
from agora.settings import Settings
from tests.logs.support import NDJSON, load_all, ndjson, staff_headers

MINUTE = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).replace(second=0, microsecond=0)


def exact(values: list[float], q: float) -> float:
    """The percentile as PostgreSQL's ``percentile_cont`` computes it (linear interpolation)."""
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@pytest.fixture
async def dataset(
    client: httpx.AsyncClient, settings: Settings, database: Database, redis: Redis
) -> dict[str, list[float]]:
    """Three routes with log-normal latencies over two minutes, sent in several batches."""
    randomness = random.Random(7)
    durations: dict[str, list[float]] = {"/api/v1/orders": [], "/api/v1/products": [], "/x": []}
    documents = []
    for n in range(6000):
        route = list(durations)[n % 3]
        duration = round(randomness.lognormvariate(3.0, 0.8), 3)
        durations[route].append(duration)
        status = 500 if n % 10 == 0 else 200
        at = MINUTE + dt.timedelta(seconds=(n % 120))
        documents.append({
            "ts": at.isoformat(), "service": "api", "path": route, "status": status,
            "duration_ms": duration, "message": "request",
        })  # fmt: skip
    headers = {**NDJSON, **staff_headers(settings)}
    for start in range(0, len(documents), 1000):
        body = ndjson(*documents[start : start + 1000])
        assert (await client.post("/api/v1/logs", content=body, headers=headers)).status_code == 202
    assert await load_all(database, redis) == len(documents)
    return durations


async def test_percentiles_from_rollups_are_within_two_percent_of_exact(
    client: httpx.AsyncClient, settings: Settings, dataset: dict[str, list[float]]
) -> None:
    params = {
        "from": MINUTE.isoformat(),
        "to": (MINUTE + dt.timedelta(minutes=2)).isoformat(),
        "step": "120",
        "by": "route",
    }
    answer = await client.get("/api/v1/logs/stats", params=params, headers=staff_headers(settings))
    assert answer.status_code == 200, answer.text
    stats = answer.json()
    assert stats["source"] == "rollups"
    by_route = {series["group"]: series["points"] for series in stats["series"]}
    assert set(by_route) == set(dataset)
    for route, values in dataset.items():
        (point,) = by_route[route]
        assert point["count"] == len(values) == 2000
        assert point["error_rate"] == pytest.approx(0.1, abs=0.01)
        for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            assert point[name] == pytest.approx(exact(values, q), rel=0.02), (route, name)


async def test_stats_from_lines_when_the_query_needs_them(
    client: httpx.AsyncClient, settings: Settings, dataset: dict[str, list[float]]
) -> None:
    params = {
        "q": "path:/api/v1/orders AND status:200",
        "from": MINUTE.isoformat(),
        "to": (MINUTE + dt.timedelta(minutes=2)).isoformat(),
        "step": "60",
    }
    answer = await client.get("/api/v1/logs/stats", params=params, headers=staff_headers(settings))
    stats = answer.json()
    assert stats["source"] == "lines"
    (series,) = stats["series"]
    assert [point["count"] for point in series["points"]] == [900, 900]
    assert all(point["error_rate"] == 0 for point in series["points"])
    assert series["points"][0]["p50"] is not None
    rolled = await client.get(
        "/api/v1/logs/stats",
        params={**params, "q": "route:/api/v1/orders"},
        headers=staff_headers(settings),
    )
    assert rolled.json()["source"] == "rollups"
    assert sum(p["count"] for p in rolled.json()["series"][0]["points"]) == 2000


async def test_top_ranks_values_by_count(
    client: httpx.AsyncClient, settings: Settings, dataset: dict[str, list[float]]
) -> None:
    params = {
        "field": "status",
        "from": MINUTE.isoformat(),
        "to": (MINUTE + dt.timedelta(minutes=2)).isoformat(),
    }
    headers = staff_headers(settings)
    answer = await client.get("/api/v1/logs/top", params=params, headers=headers)
    assert answer.json() == [{"value": "200", "count": 5400}, {"value": "500", "count": 600}]
    narrowed = await client.get(
        "/api/v1/logs/top", params={**params, "field": "path", "q": "status:500", "limit": "2"},
        headers=headers,
    )  # fmt: skip
    assert [item["count"] for item in narrowed.json()] == [200, 200]
    refused = await client.get("/api/v1/logs/top", params={"field": "ts"}, headers=headers)
    assert refused.status_code == 422
