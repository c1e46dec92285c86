"""The log platform: ingest lines/s end to end, search latency at 1 M lines, time to searchable.

One run prints three tables:

1. Ingest: lines per second from HTTP clients posting 1,000-line bodies (nginx ``combined`` and
   NDJSON) to ``agora api`` until every line is stored by ``agora logs worker`` processes,
   against a baseline that only COPYs pre-parsed rows into ``log_lines`` (same indexes; the best
   of three runs). Ingest rate limits are lifted: the pipeline, not the budget, is measured.
2. Search over 1,000,000 stored lines (one day): p50/p99 of ``GET /api/v1/logs/search`` for a
   selective query (``status:500 AND path:/api/v1/orders*``) and a broad one, against
   ``/healthz`` in the same run.
3. The delay from a request to Agora until its own log line is searchable (p50/p95).

    .venv/bin/python -m bench.logs [--lines 1000000] [--duration 10] [--loaders 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import aiohttp
import asyncpg
import httpx
import orjson
from rich.console import Console
from rich.table import Table

from agora.core.db import Database
from agora.core.security import Role
from agora.logs.parsing import ROW_COLUMNS, Defaults, parse_body
from agora.logs.service import keep_storage
from agora.settings import Settings
from bench.harness import (
    ROOT,
    LoadResult,
    Request,
    access_token,
    agora_env,
    agora_server,
    asyncpg_dsn,
    bearer,
    bench_services,
    free_port,
    get,
    print_table,
    run_load,
)

BODY_LINES = 1000
PATHS = [
    "/api/v1/orders", "/api/v1/orders/{n}", "/api/v1/products/{n}", "/api/v1/carts/{n}",
    "/api/v1/flash-sales/{n}/purchase", "/healthz", "/api/v1/products", "/static/app.js",
]  # fmt: skip
WORDS = ["payment", "order", "cache", "timeout", "retry", "stock", "user", "checkout", "failed"]
console = Console(width=120)


def nginx_body(randomness: random.Random, lines: int) -> bytes:
    moment = dt.datetime.now(dt.UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
    out = []
    for _ in range(lines):
        path = randomness.choice(PATHS).format(n=randomness.randint(1, 99999))
        status = 500 if randomness.random() < 0.01 else 200
        out.append(
            f"10.{randomness.randint(0, 255)}.0.{randomness.randint(1, 254)} - - [{moment}] "
            f'"GET {path} HTTP/1.1" {status} {randomness.randint(100, 9000)} "-" '
            f'"Mozilla/5.0 bench" {randomness.lognormvariate(-3, 1):.3f}'
        )
    return "\n".join(out).encode()


def ndjson_body(randomness: random.Random, lines: int) -> bytes:
    return b"\n".join(
        orjson.dumps(
            {
                "level": "error" if randomness.random() < 0.01 else "info",
                "message": " ".join(randomness.choices(WORDS, k=5)),
                "service": f"svc-{randomness.randint(1, 5)}",
                "status": 200,
                "path": randomness.choice(PATHS).format(n=randomness.randint(1, 99999)),
                "duration_ms": round(randomness.lognormvariate(3, 1), 2),
                "tenant": randomness.randint(1, 50),
            }
        )
        for _ in range(lines)
    )


async def make_partitions(database_url: str, settings: Settings) -> None:
    """Today's partitions and the days around it, as beat would make them."""
    database = Database(database_url, pool_size=2)
    try:
        await keep_storage(database, settings)
    finally:
        await database.dispose()


async def truncate(dsn: str) -> None:
    """Empty the log tables, in the order a loader's transaction locks them, so that emptying
    them while loaders run waits for a load to end instead of deadlocking with it."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("TRUNCATE log_ingest_batches, log_lines, log_rollups")
    finally:
        await connection.close()


def records(rows: list[tuple[object, ...]], first_id: int) -> list[tuple[object, ...]]:
    return [
        (first_id + n, dt.datetime.fromtimestamp(float(row[0]), dt.UTC), *row[1:])  # type: ignore[arg-type]
        for n, row in enumerate(rows)
    ]


async def copy_baseline(dsn: str, total: int) -> LoadResult:
    """COPY pre-parsed nginx rows into empty tables in 10,000-row transactions; one 'request' per
    transaction."""
    now = time.time()
    defaults = Defaults(now=now, oldest=now - 86400, newest=now + 86400)
    randomness = random.Random(1)
    batches = [
        records(parse_body(nginx_body(randomness, 10_000), "nginx", defaults).rows, n * 10_000)
        for n in range(total // 10_000)
    ]
    await truncate(dsn)
    connection = await asyncpg.connect(dsn)
    result = LoadResult("COPY pre-parsed rows (baseline)")
    started = time.perf_counter()
    try:
        for batch in batches:
            sent = time.perf_counter()
            async with connection.transaction():
                await connection.copy_records_to_table(
                    "log_lines", records=batch, columns=("id", *ROW_COLUMNS)
                )
            result.latencies.append(time.perf_counter() - sent)
    finally:
        await connection.close()
    result.elapsed = time.perf_counter() - started
    return result


@contextlib.contextmanager
def loaders(env: dict[str, str], count: int) -> Iterator[None]:
    processes = [
        subprocess.Popen([sys.executable, "-m", "agora", "logs", "worker"], env=env, cwd=ROOT)
        for _ in range(count)
    ]
    try:
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


async def stored_count(dsn: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        return int(await connection.fetchval("SELECT count(*) FROM log_lines"))
    finally:
        await connection.close()


async def ingest_end_to_end(
    name: str, base_url: str, bodies: list[bytes], headers: dict[str, str], params: str,
    dsn: str, duration: float,
) -> tuple[LoadResult, int, float]:  # fmt: skip
    """Post bodies for ``duration`` seconds, then wait until every accepted line is stored;
    returns the request result, the lines stored and lines/s from first post to last store."""
    await truncate(dsn)
    accepted = 0

    def post(body: bytes) -> Request:
        async def send(session: aiohttp.ClientSession, n: int) -> int:
            nonlocal accepted
            async with session.post(
                "/api/v1/logs" + params, data=bodies[n % len(bodies)], headers=headers
            ) as response:
                if response.status == 202:
                    accepted += (await response.json())["accepted"]
                return response.status

        return send

    started = time.perf_counter()
    result = await run_load(name, base_url, post(b""), concurrency=8, duration=duration, warmup=0)
    while True:
        stored = await stored_count(dsn)
        if stored >= accepted:
            break
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    return result, stored, stored / elapsed


async def seed(dsn: str, total: int) -> None:
    """``total`` lines over the last day, 1 % of them 500s, by COPY in 50,000-row batches."""
    await truncate(dsn)
    randomness = random.Random(2)
    now = time.time()
    connection = await asyncpg.connect(dsn)
    try:
        for start in range(0, total, 50_000):
            rows = []
            for n in range(start, min(total, start + 50_000)):
                at = dt.datetime.fromtimestamp(now - 86000 * (1 - n / total), dt.UTC)
                path = randomness.choice(PATHS).format(n=randomness.randint(1, 99999))
                status = 500 if randomness.random() < 0.01 else 200
                rows.append((
                    n + 1, at, "edge", None, "error" if status == 500 else "info",
                    " ".join(randomness.choices(WORDS, k=5)), "GET", path, None, status,
                    randomness.lognormvariate(3, 1), 512, "10.0.0.1", "bench", None, None, "{}",
                ))  # fmt: skip
            await connection.copy_records_to_table(
                "log_lines", records=rows, columns=("id", *ROW_COLUMNS)
            )
        await connection.execute("ANALYZE log_lines")
        await connection.execute(
            "SELECT setval('log_lines_id_seq', (SELECT max(id) FROM log_lines))"
        )
    finally:
        await connection.close()


async def time_to_searchable(base_url: str, staff: dict[str, str], probes: int) -> list[float]:
    """Seconds from a request to Agora until its own line is found by search, per probe."""
    delays = []
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        for _ in range(probes):
            request_id = uuid.uuid4().hex
            since = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)).isoformat()
            sent = time.perf_counter()
            await http.get(f"/api/v1/products/{uuid.uuid4()}", headers={"X-Request-ID": request_id})
            while True:
                # the last seconds, as a user looking for a request just made would ask
                params = {"q": f"request_id:{request_id}", "from": since}
                page = await http.get("/api/v1/logs/search", params=params, headers=staff)
                if page.json()["items"]:
                    break
                await asyncio.sleep(0.01)
            delays.append(time.perf_counter() - sent)
    return delays


def search(q: str, headers: dict[str, str]) -> Request:
    async def send(session: aiohttp.ClientSession, _: int) -> int:
        async with session.get("/api/v1/logs/search", params={"q": q}, headers=headers) as reply:
            await reply.read()
            return reply.status

    return send


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--loaders", type=int, default=2)
    parser.add_argument("--probes", type=int, default=50)
    args = parser.parse_args()
    urls = bench_services()
    dsn = asyncpg_dsn(urls)
    env = agora_env(
        urls, AGORA_LOG_BUFFER_MAX_BATCHES="100000", AGORA_RATE_LIMIT_LOG_INGEST="100000000/second"
    )
    settings = Settings(_env_file=None)
    staff = bearer(access_token(Role.STAFF))
    randomness = random.Random(3)
    nginx = [nginx_body(randomness, BODY_LINES) for _ in range(20)]
    ndjson = [ndjson_body(randomness, BODY_LINES) for _ in range(20)]

    asyncio.run(make_partitions(urls.database_url, settings))
    # The best of three runs, so that a noisy moment never flatters the ratios below.
    baseline = min(
        (asyncio.run(copy_baseline(dsn, 200_000)) for _ in range(3)),
        key=lambda result: result.elapsed,
    )
    baseline_rate = 200_000 / baseline.elapsed
    ingest_rows = []
    with agora_server(env, free_port()) as url, loaders(env, args.loaders):
        for name, bodies, content_type, params in (
            ("nginx combined", nginx, "text/plain", "?format=nginx"),
            ("NDJSON", ndjson, "application/x-ndjson", ""),
        ):
            headers = {**staff, "Content-Type": content_type}
            result, stored, rate = asyncio.run(
                ingest_end_to_end(name, url, bodies, headers, params, dsn, args.duration)
            )
            ingest_rows.append((name, stored, result, rate))
        asyncio.run(seed(dsn, args.lines))
        health = asyncio.run(run_load("agora /healthz (baseline)", url, get("/healthz"),
                                      concurrency=4, duration=5))  # fmt: skip
        searches = [
            asyncio.run(
                run_load(
                    f"search {q!r} over {args.lines:,} lines",
                    url,
                    search(q, staff),
                    concurrency=4,
                    duration=args.duration,
                )
            )
            for q in ("status:500 AND path:/api/v1/orders*", "level:info", "payment timeout")
        ]
        delays = asyncio.run(time_to_searchable(url, staff, args.probes))

    table = Table(title=f"Log ingest end to end ({args.loaders} loaders, 1,000-line bodies)")
    for column in ("scenario", "lines stored", "requests", "errors", "lines/s", "vs COPY"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    table.add_row(baseline.name, "200,000", str(baseline.requests), "0",
                  f"{baseline_rate:,.0f}", "baseline")  # fmt: skip
    for name, stored, result, rate in ingest_rows:
        table.add_row(name, f"{stored:,}", str(result.requests), str(result.errors),
                      f"{rate:,.0f}", f"{rate / baseline_rate:.2f}x")  # fmt: skip
    console.print(table)
    print_table("Log search (4 clients)", searches, health)
    ordered = sorted(delays)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    console.print(
        f"Request to searchable ({len(delays)} probes): p50 {statistics.median(delays) * 1000:.0f}"
        f" ms, p95 {p95 * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
