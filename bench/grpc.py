"""The inventory over gRPC against the same over HTTP: GetStock and Reserve per second.

One run starts ``agora api`` and ``agora grpc`` (one process each) on the same services and
drives each with the same number of closed-loop clients: HTTP through aiohttp
(``GET /variants/{id}/stock``, ``POST /stock-reservations``), gRPC through one asyncio channel
(``GetStock``, ``Reserve``). Both call the same ``inventory.service`` functions; the difference
is the transport and its framework. Each Reserve holds one unit of a variant stocked with a
billion, under a new reference, so none is refused.

    .venv/bin/python -m bench.grpc [--concurrency 32] [--duration 5]
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import grpc

from agora.core.embedded import ServiceUrls
from agora.core.security import Role
from agora.rpc.inventory.v1 import inventory_pb2 as pb
from agora.rpc.inventory.v1 import inventory_pb2_grpc
from bench.harness import (
    ROOT,
    LoadResult,
    Request,
    access_token,
    agora_env,
    agora_server,
    bearer,
    bench_services,
    free_port,
    get,
    load_arguments,
    load_options,
    print_table,
    run_load,
)
from bench.seeding import connected, published_variant

SERVICE_KEY = "bench-service-key"
Call = Callable[[int], Awaitable[Any]]


async def seed(urls: ServiceUrls) -> uuid.UUID:
    """A variant with a billion units in stock."""
    async with connected(urls) as (database, redis), database.unit_of_work() as session:
        return await published_variant(session, redis, "gRPC bench", 1_000_000_000)


@contextlib.contextmanager
def grpc_server(env: dict[str, str], port: int) -> Iterator[str]:
    """``agora grpc`` on ``port`` until the block ends; yields its target once it answers."""
    command = [sys.executable, "-m", "agora", "grpc", "--port", str(port)]
    process = subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)
    target = f"127.0.0.1:{port}"
    try:
        with grpc.insecure_channel(target) as channel:
            grpc.channel_ready_future(channel).result(timeout=60)
        yield target
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


async def drive_grpc(name: str, call: Call, concurrency: int, duration: float) -> LoadResult:
    """Closed-loop gRPC load: ``concurrency`` callers for ``duration`` s after a 1 s warm-up."""
    result = LoadResult(name)
    for seconds, record in ((1.0, LoadResult("warm-up")), (duration, result)):
        deadline = time.perf_counter() + seconds
        counter = iter(range(10**9))

        async def one_client(
            into: LoadResult = record, until: float = deadline, numbers: Iterator[int] = counter
        ) -> None:
            while time.perf_counter() < until:
                sent = time.perf_counter()
                try:
                    await call(next(numbers))
                except grpc.aio.AioRpcError:
                    into.errors += 1
                    continue
                into.latencies.append(time.perf_counter() - sent)

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        record.elapsed = time.perf_counter() - started
    return result


def reserve_over_http(variant_id: uuid.UUID, headers: dict[str, str]) -> Request:
    """POST /stock-reservations of one unit under a new reference."""

    async def send(session: aiohttp.ClientSession, _: int) -> int:
        body = {
            "reference_id": str(uuid.uuid4()),
            "lines": [{"variant_id": str(variant_id), "quantity": 1}],
        }
        async with session.post(
            "/api/v1/stock-reservations", json=body, headers=headers
        ) as response:
            await response.read()
            return response.status

    return send


async def grpc_results(
    target: str, variant_id: uuid.UUID, concurrency: int, duration: float
) -> tuple[LoadResult, LoadResult]:
    """GetStock and Reserve over one asyncio channel."""
    metadata = (("authorization", f"Bearer {SERVICE_KEY}"),)
    async with grpc.aio.insecure_channel(target) as channel:
        stub: Any = inventory_pb2_grpc.InventoryServiceStub(channel)
        get_request = pb.GetStockRequest(variant_id=str(variant_id))
        lines = [pb.ReserveLine(variant_id=str(variant_id), quantity=1)]

        async def get_stock(_: int) -> None:
            await stub.GetStock(get_request, metadata=metadata)

        async def reserve(_: int) -> None:
            request = pb.ReserveRequest(reference_id=str(uuid.uuid4()), lines=lines)
            await stub.Reserve(request, metadata=metadata)

        got = await drive_grpc("gRPC GetStock", get_stock, concurrency, duration)
        held = await drive_grpc("gRPC Reserve", reserve, concurrency, duration)
    return got, held


def main() -> None:
    """Measure both transports on both calls; print one table per call."""
    args = load_arguments(__doc__).parse_args()
    load = load_options(args)
    urls = bench_services()
    variant_id = asyncio.run(seed(urls))
    env = agora_env(urls, AGORA_SERVICE_KEYS=SERVICE_KEY)
    headers = bearer(access_token(Role.STAFF))
    with agora_server(env, free_port()) as url, grpc_server(env, free_port()) as target:
        stock_path = f"/api/v1/variants/{variant_id}/stock"
        http_get = asyncio.run(run_load("HTTP GET stock", url, get(stock_path, headers), **load))
        http_reserve = asyncio.run(
            run_load("HTTP POST reservation", url, reserve_over_http(variant_id, headers), **load)
        )
        grpc_get, grpc_reserve = asyncio.run(
            grpc_results(target, variant_id, args.concurrency, args.duration)
        )
    title = f"{{}}: one process each, {args.concurrency} clients, {args.duration:.0f} s"
    print_table(title.format("GetStock, gRPC against HTTP"), [grpc_get], http_get)
    print_table(title.format("Reserve, gRPC against HTTP"), [grpc_reserve], http_reserve)


if __name__ == "__main__":
    main()
