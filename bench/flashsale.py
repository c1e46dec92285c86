"""A flash-sale stampede against Agora (Redis Lua + worker) and against a PostgreSQL row lock.

The row lock is measured twice: in a bare Starlette + asyncpg app, and inside Agora's own stack
(same middleware, authorisation, rate limits, unit of work: ``bench.flashsale_rowlock_in_agora``)
so that the comparison with Agora isolates the design choice (Redis decides vs. a row lock
decides). Every server gets the same closed-loop crowd of buyers, each request a different
buyer trying to buy one unit, for the same time; a 409 (sold out, limit reached) is an answer,
not an error. For each: purchase attempts per second with p50/p99 latency, units sold against
units on sale (the oversell, which must be 0), and for Agora's Redis purchase the time until
every ticket is an order.

    .venv/bin/python -m bench.flashsale [--units 1000] [--buyers 20000] [--concurrency 64]
                                        [--duration 5] [--processes 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, insert, select

from agora.accounts.models import User
from agora.core.db import Database
from agora.core.embedded import ServiceUrls
from agora.core.security import Role
from agora.flashsale.models import FlashSaleTicket, TicketStatus
from bench import flashsale_baseline_app
from bench.harness import (
    BENCH_DATA_DIR,
    ROOT,
    LoadResult,
    access_token,
    agora_env,
    agora_server,
    app_server,
    asyncpg_dsn,
    bench_services,
    free_port,
    load_arguments,
    load_options,
    print_table,
    run_load,
)
from bench.seeding import connected, published_variant

ANSWERS = frozenset({202, 409})
API = "/api/v1"
ROWLOCK_IN_AGORA_APP = "bench.flashsale_rowlock_in_agora:create_app"


async def seed_sale_buyers(
    urls: ServiceUrls, buyers: int, units: int
) -> tuple[uuid.UUID, list[str], str]:
    """A published variant with twice the sale's units in stock, buyers, and a staff token."""
    staff_id = uuid.uuid4()
    buyer_ids = [uuid.uuid4() for _ in range(buyers)]
    async with connected(urls) as (database, redis), database.unit_of_work() as session:
        variant_id = await published_variant(session, redis, "Bench sneaker", units * 2)
        rows = [{"id": staff_id, "email": f"{staff_id.hex}@bench.test", "password_hash": "-"}]
        rows += [
            {"id": buyer_id, "email": f"{buyer_id.hex}@bench.test", "password_hash": "-"}
            for buyer_id in buyer_ids
        ]
        await session.execute(insert(User), rows)
    tokens = [access_token(Role.CUSTOMER, buyer_id) for buyer_id in buyer_ids]
    return variant_id, tokens, access_token(Role.STAFF, staff_id)


async def create_sale(base_url: str, staff_token: str, variant_id: uuid.UUID, units: int) -> str:
    now = dt.datetime.now(dt.UTC)
    body = {
        "variant_id": str(variant_id),
        "price": {"amount": 999, "currency": "EUR"},
        "quantity": units,
        "starts_at": (now - dt.timedelta(seconds=1)).isoformat(),
        "ends_at": (now + dt.timedelta(hours=1)).isoformat(),
        "per_user_limit": 1,
    }
    async with (
        aiohttp.ClientSession(base_url) as session,
        session.post(
            f"{API}/flash-sales", json=body, headers={"Authorization": f"Bearer {staff_token}"}
        ) as response,
    ):
        assert response.status == 201, await response.text()
        sale_id: str = (await response.json())["id"]
        return sale_id


def _authorised_purchase(path: str, tokens: list[str]):  # type: ignore[no-untyped-def]
    """POST one unit to ``path``, each request as the next buyer."""
    headers = [{"Authorization": f"Bearer {token}"} for token in tokens]

    async def send(session: aiohttp.ClientSession, sequence: int) -> int:
        async with session.post(
            path, json={"quantity": 1}, headers=headers[sequence % len(headers)]
        ) as response:
            await response.read()
            return response.status

    return send


async def _baseline_purchase(session: aiohttp.ClientSession, sequence: int) -> int:
    async with session.post(f"/purchase/buyer-{sequence}") as response:
        await response.read()
        return response.status


async def _remaining(base_url: str, sale_id: str) -> int:
    async with (
        aiohttp.ClientSession(base_url) as session,
        session.get(f"{API}/flash-sales/{sale_id}") as response,
    ):
        remaining: int = (await response.json())["remaining"]
        return remaining


async def _settled_tickets(urls: ServiceUrls, sale_id: str, other_than: TicketStatus) -> int:
    """Tickets of the sale in any status but ``other_than``."""
    database = Database(urls.database_url, pool_size=2)
    try:
        async with database.unit_of_work() as session:
            count = await session.scalar(
                select(func.count()).where(
                    FlashSaleTicket.sale_id == uuid.UUID(sale_id),
                    FlashSaleTicket.status != other_than,
                )
            )
            return int(count or 0)
    finally:
        await database.dispose()


@contextlib.contextmanager
def _worker(env: dict[str, str]) -> Iterator[None]:
    process = subprocess.Popen(
        [sys.executable, "-m", "agora", "worker", "--concurrency", "2"],
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        yield
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)


def main() -> None:
    """Run the stampede on both servers and print the tables."""
    parser = load_arguments(__doc__, concurrency=64)
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--buyers", type=int, default=20000)
    parser.add_argument(
        "--processes", type=int, default=1, help="API processes of each server (same for both)"
    )
    args = parser.parse_args()
    load = {**load_options(args), "warmup": 0.0}

    urls = bench_services()
    dsn = asyncpg_dsn(urls)

    asyncio.run(_reset_baseline(dsn, args.units))
    os.environ["BASELINE_DATABASE_URL"] = dsn
    baseline_app = "bench.flashsale_baseline_app:create_app"
    with app_server(baseline_app, free_port(), workers=args.processes) as url:
        baseline = asyncio.run(
            run_load(
                "PostgreSQL SELECT … FOR UPDATE (baseline)",
                url,
                _baseline_purchase,
                ok_statuses=ANSWERS,
                **load,
            )
        )

    baseline_units = asyncio.run(_baseline_sold(dsn))

    env = agora_env(urls, AGORA_RATE_LIMIT_FLASH_SALE_IP="1000000/second")
    rowlock = _rowlock_in_agora_race(urls, env, args, load, dsn)
    races = [
        _agora_race(urls, env, args, load, worker_during_race=True),
        _agora_race(urls, env, args, load, worker_during_race=False),
    ]
    print_table(
        f"Flash sale: {args.units} units, {args.concurrency} buyers at a time, "
        f"{args.duration:.0f}s, {args.processes} API process(es) (202 and 409 are answers)",
        [rowlock.load, *(race.load for race in races)],
        baseline,
    )
    _print_outcome(args.units, baseline, baseline_units, rowlock, races)


async def _reset_baseline(dsn: str, units: int) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await flashsale_baseline_app.reset(connection, units)
    finally:
        await connection.close()


async def _baseline_sold(dsn: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        return int(await connection.fetchval(flashsale_baseline_app.UNITS_SOLD))
    finally:
        await connection.close()


@dataclass(frozen=True)
class RowLockRace:
    """What the race against the row-lock purchase inside Agora's stack observed."""

    load: LoadResult
    units_sold: int


def _rowlock_in_agora_race(
    urls: ServiceUrls, env: dict[str, str], args: argparse.Namespace, load: dict[str, Any], dsn: str
) -> RowLockRace:
    """The baseline's row-lock purchase served by Agora's app and server settings (the Agora
    environment, Prometheus samples in a multiprocess folder as ``agora api`` sets up), raced by
    freshly seeded buyers' tokens under the same load as the other scenarios."""
    _, tokens, _ = asyncio.run(seed_sale_buyers(urls, args.buyers, args.units))
    asyncio.run(_reset_baseline(dsn, args.units))
    metrics_dir = BENCH_DATA_DIR / "rowlock-metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    server_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    port = free_port()
    with app_server(ROWLOCK_IN_AGORA_APP, port, workers=args.processes, env=server_env) as url:
        result = asyncio.run(
            run_load(
                "PostgreSQL SELECT … FOR UPDATE inside Agora's stack",
                url,
                _authorised_purchase(f"{API}/bench/rowlock-purchase", tokens),
                ok_statuses=ANSWERS,
                **load,
            )
        )
    return RowLockRace(result, asyncio.run(_baseline_sold(dsn)))


@dataclass(frozen=True)
class AgoraRace:
    """What one race against Agora observed."""

    load: LoadResult
    units_sold: int
    drain: float
    drain_from: str


def _agora_race(
    urls: ServiceUrls,
    env: dict[str, str],
    args: argparse.Namespace,
    load: dict[str, Any],
    *,
    worker_during_race: bool,
) -> AgoraRace:
    """One race on a fresh sale. With the worker started only after the race, the table shows the
    purchase path alone (this machine's two cores are not shared with the worker) and how long
    the worker then takes to order every ticket."""
    name = "Agora Redis Lua purchase" + (
        ", worker running" if worker_during_race else ", worker after the race"
    )
    variant_id, tokens, staff_token = asyncio.run(seed_sale_buyers(urls, args.buyers, args.units))
    with contextlib.ExitStack() as stack:
        if worker_during_race:
            stack.enter_context(_worker(env))
        url = stack.enter_context(agora_server(env, free_port(), workers=args.processes))
        sale_id = asyncio.run(create_sale(url, staff_token, variant_id, args.units))
        result = asyncio.run(
            run_load(
                name,
                url,
                _authorised_purchase(f"{API}/flash-sales/{sale_id}/purchase", tokens),
                ok_statuses=ANSWERS,
                **load,
            )
        )
        drain_started = time.perf_counter()
        if not worker_during_race:
            stack.enter_context(_worker(env))
        tickets = args.units - asyncio.run(_remaining(url, sale_id))
        while asyncio.run(_settled_tickets(urls, sale_id, TicketStatus.QUEUED)) < tickets:
            time.sleep(0.05)
        drain = time.perf_counter() - drain_started
        units_sold = asyncio.run(_settled_tickets(urls, sale_id, TicketStatus.REJECTED))
    drain_from = "after the race" if worker_during_race else "after the worker started"
    return AgoraRace(result, units_sold, drain, drain_from)


def _print_outcome(
    units: int,
    baseline: LoadResult,
    baseline_units: int,
    rowlock: RowLockRace,
    races: list[AgoraRace],
) -> None:
    table = Table(title="Units sold and oversell")
    for column in ("scenario", "units on sale", "units sold", "oversold", "all tickets ordered"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    table.add_row(
        baseline.name,
        str(units),
        str(baseline_units),
        str(max(0, baseline_units - units)),
        "n/a (decided in the request)",
    )
    table.add_row(
        rowlock.load.name,
        str(units),
        str(rowlock.units_sold),
        str(max(0, rowlock.units_sold - units)),
        "n/a (decided in the request)",
    )
    for race in races:
        table.add_row(
            race.load.name,
            str(units),
            str(race.units_sold),
            str(max(0, race.units_sold - units)),
            f"{race.drain:.2f}s {race.drain_from}",
        )
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
