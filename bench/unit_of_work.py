"""What a unit of work costs around its statement: Agora's against asyncpg's own pool.

Every write request of a checkout is a unit of work (``Database.unit_of_work``): a session, its
connection from the pool, a transaction, commit, close. This measures that frame around one
statement, in-process and without HTTP, against the leanest equivalent: an asyncpg pool of the
same size, ``acquire()``, ``transaction()``, the same statement. Three variants, run in
alternating rounds so that a change of the machine's speed hits them alike:

- **baseline:** asyncpg's pool and transaction, the statement sent by asyncpg;
- **Agora, driver statement:** a unit of work sending the statement as the hot paths do
  (``core/driver.DriverStatement``);
- **Agora, ORM statement:** the same through ``session.execute``, as the rest of the app does.

    .venv/bin/python -m bench.unit_of_work [--units 3000] [--rounds 5] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
import uvloop
from rich.console import Console
from rich.table import Table
from sqlalchemy import Integer, bindparam, select

from agora.core.db import Database
from agora.core.driver import DriverStatement
from bench.harness import asyncpg_dsn, bench_services

_STATEMENT = select(bindparam("x", type_=Integer))
_DRIVER = DriverStatement(_STATEMENT)
Unit = Callable[[], Awaitable[None]]


@dataclass
class Variant:
    """One way of running a unit of work, and what its rounds measured."""

    name: str
    unit: Unit
    cpu: list[float] = field(default_factory=list)  # seconds of CPU a unit, per round
    wall: list[float] = field(default_factory=list)  # seconds a round took
    latencies: list[float] = field(default_factory=list)
    errors: int = 0


async def _round(variant: Variant, units: int, concurrency: int) -> None:
    """``units`` units of work, ``concurrency`` at a time; CPU and latency recorded."""

    async def client(count: int) -> None:
        for _ in range(count):
            started = time.perf_counter()
            try:
                await variant.unit()
            except Exception:
                variant.errors += 1
            variant.latencies.append(time.perf_counter() - started)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(client(units // concurrency) for _ in range(concurrency)))
    variant.cpu.append((time.process_time() - cpu) / units)
    variant.wall.append(time.perf_counter() - started)


async def measure(units: int, rounds: int, concurrency: int) -> list[Variant]:
    """Each variant's rounds, in alternation, after a warm-up round of each."""
    urls = await asyncio.to_thread(bench_services)
    size = concurrency  # a connection for each client in both pools: none waits for one
    database = Database(urls.database_url, pool_size=size)
    pool = await asyncpg.create_pool(asyncpg_dsn(urls), min_size=size, max_size=size)
    assert pool is not None

    async def baseline() -> None:
        async with pool.acquire() as connection, connection.transaction():
            await connection.fetchrow(_DRIVER.sql, 1)

    async def driver() -> None:
        async with database.unit_of_work() as session:
            await _DRIVER.fetchrow(session, x=1)

    async def orm() -> None:
        async with database.unit_of_work() as session:
            await session.execute(_STATEMENT, {"x": 1})

    variants = [
        Variant("baseline: asyncpg pool + transaction", baseline),
        Variant("Agora: unit of work, driver statement", driver),
        Variant("Agora: unit of work, ORM statement", orm),
    ]
    try:
        for number in range(rounds + 1):
            for variant in variants:
                await _round(variant, units, concurrency)
                if number == 0:  # the warm-up round
                    variant.cpu.clear()
                    variant.wall.clear()
                    variant.latencies.clear()
    finally:
        await pool.close()
        await database.dispose()
    return variants


def print_variants(variants: list[Variant], units: int, concurrency: int) -> None:
    """Throughput, latency, errors and CPU of each variant, against the baseline's CPU."""
    table = Table(
        title=f"A unit of work around one statement: {units} units a round, {concurrency} at "
        f"once, median of {len(variants[0].cpu)} rounds"
    )
    columns = ("variant", "units/s", "p50 µs", "p99 µs", "errors", "CPU µs a unit", "vs baseline")
    for column in columns:
        table.add_column(column, justify="left" if column == "variant" else "right")
    baseline_cpu = statistics.median(variants[0].cpu)
    for variant in variants:
        cpu = statistics.median(variant.cpu)
        latencies = sorted(variant.latencies)
        table.add_row(
            variant.name,
            f"{units / statistics.median(variant.wall):,.0f}",
            f"{latencies[len(latencies) // 2] * 1e6:.0f}",
            f"{latencies[int(len(latencies) * 0.99)] * 1e6:.0f}",
            str(variant.errors),
            f"{cpu * 1e6:.0f}",
            "baseline" if variant is variants[0] else f"{cpu / baseline_cpu:.2f}x",
        )
    Console(width=140).print(table)


def main() -> None:
    """Measure the variants and print their table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, default=3000, help="units of work a round")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds of each variant")
    parser.add_argument("--concurrency", type=int, default=8, help="units in flight at once")
    args = parser.parse_args()
    variants = uvloop.run(measure(args.units, args.rounds, args.concurrency))
    print_variants(variants, args.units, args.concurrency)


if __name__ == "__main__":
    main()
