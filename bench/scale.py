"""Scale-out on this machine: the production shape (``agora stack up``: nginx in front of the API
processes, a Celery worker and beat on PostgreSQL, Redis and RabbitMQ) with 1 and then 2 API
processes, measured through nginx in one run.

Two loads: a cached catalog read (wrk) and whole checkouts (cart → item → order, each a request,
aiohttp clients). The row with one API process is the baseline; the ratio says what the second
process bought. On 2 cores the load generator, nginx, PostgreSQL and the worker share the CPUs
with the API processes, so the gain is bounded well below 2x.

    .venv/bin/python -m bench.scale [--duration 5] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import asyncpg
import httpx
from redis import Redis

from agora.core.embedded import ServiceUrls
from bench.checkout import checkout, seed
from bench.harness import ROOT, LoadResult, free_port, print_table, run_load
from bench.wrk import measure_get

POSTGRES_SERVER = os.environ.get("AGORA_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
DATABASE = "agora_bench_scale"
URLS = ServiceUrls(
    database_url=f"postgresql+asyncpg://{POSTGRES_SERVER.split('://', 1)[1]}/{DATABASE}",
    redis_url=os.environ.get("AGORA_BENCH_REDIS", "redis://127.0.0.1:6379/4"),
    broker_url=os.environ.get("AGORA_BENCH_BROKER", "amqp://guest:guest@127.0.0.1:5672//"),
)
BUYERS = 64


@contextlib.contextmanager
def stack(api_processes: int) -> Iterator[str]:
    """``agora stack up`` with ``api_processes`` API processes; yields nginx's base URL."""
    proxy_port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("AGORA_")}
    env.update(
        AGORA_ENV="test",
        AGORA_DATA_DIR=str(ROOT / ".agora" / "bench-scale"),
        AGORA_DATABASE_URL=URLS.database_url,
        AGORA_REDIS_URL=URLS.redis_url,
        AGORA_BROKER_URL=URLS.broker_url,
        AGORA_TASK_QUEUE="agora-bench-scale",
        AGORA_PROXY_PORT=str(proxy_port),
        AGORA_LOG_LEVEL="WARNING",
        AGORA_RATE_LIMIT_DEFAULT="1000000/second",
    )
    command = [sys.executable, "-m", "agora", "stack", "up", "--no-demo", "--workers", "1"]
    command += ["--api-processes", str(api_processes), "--api-base-port", str(free_port())]
    command += ["--worker-metrics-port", str(free_port())]
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{proxy_port}"
    try:
        deadline = time.monotonic() + 120
        while not _ready(base_url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the stack did not come up")
            time.sleep(0.5)
        yield base_url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def _ready(base_url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200
    return False


async def fresh_database() -> None:
    """An empty database for the run (the stack migrates it)."""
    connection = await asyncpg.connect(f"{POSTGRES_SERVER}/postgres")
    try:
        await connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        await connection.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await connection.close()
    Redis.from_url(URLS.redis_url).flushdb()


async def measure(base_url: str, processes: int, args: argparse.Namespace) -> list[LoadResult]:
    """The cached read and the checkout through nginx, on the running stack."""
    variant_id, buyers = await seed(URLS, BUYERS)
    path = "/api/v1/products?limit=20"
    read = await measure_get(
        f"cached product list, {processes} API", base_url, path, duration=args.duration
    )
    queue: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    for headers in buyers.headers:
        queue.put_nowait(headers)
    orders = await run_load(
        f"checkouts (3 requests each), {processes} API",
        base_url,
        checkout(variant_id, queue),
        concurrency=args.concurrency,
        duration=args.duration,
    )
    return [read, orders]


def main() -> None:
    """Run the stack with 1 and then 2 API processes and print both loads against the first."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    results: dict[int, list[LoadResult]] = {}
    for processes in (1, 2):
        asyncio.run(fresh_database())
        with stack(processes) as base_url:
            results[processes] = asyncio.run(measure(base_url, processes, args))
    for index, title in enumerate(("Cached read through nginx", "Checkout through nginx")):
        print_table(title, [results[2][index]], baseline=results[1][index])


if __name__ == "__main__":
    main()
