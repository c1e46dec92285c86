"""The crawler: pages/s of one crawler process against a plain aiohttp loop, the scheduler's
lease+ack operations/s, and Redis bytes per queued URL.

1. A local shop (``bench/crawl_pages.py``, its own process) serves 20 KB product pages. The
   baseline is a plain aiohttp loop with ``--concurrency`` clients fetching them as fast as it
   can. Then one ``agora crawl --concurrency N`` process crawls the same pages: a site with no
   delay and a one-second recrawl interval over more targets than it can fetch in a second, so
   it is never idle; every page is leased, fetched, read (JSON-LD), compared with its last price
   in PostgreSQL and acknowledged. Pages/s are counted by the shop over the same window. The two
   take turns, ``--rounds`` rounds each (the crawler started afresh for each of its rounds, the
   frontier and the recorded prices kept). The headline is the ratio of each side's median round
   (pages/s, and CPU µs a page likewise), steadier than one best round on a shared machine:
   another process taking the cores for a few seconds drags down one round of one side, and
   moves neither median much. Each side's best round is printed too. A third side takes its
   turn in each round, the floor (``bench/crawl_floor.py``): the same leases, pages, price
   watch and acknowledgements in the leanest loop that does them, without the crawler's own
   machinery (politeness for redirect hops, robots.txt, safety limits, metrics): how close to
   the plain loop the crawler's work itself allows.
2. The scheduler alone: ``--urls`` URLs are queued (Redis memory is measured before and after),
   then clients lease batches and acknowledge them at once, as crawlers with a null fetcher.

Goals: the crawler at >= 0.7x the plain loop, >= 5,000 lease+ack/s, <= 256 bytes per URL.
``python -m bench.crawler [--concurrency 32] [--duration 10] [--rounds 3] [--urls 100000]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import aiohttp
import httpx
import psutil
from redis.asyncio import Redis
from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from agora.core.db import Database
from agora.crawler.frontier import (
    Ack,
    Frontier,
    FrontierConfig,
    HostPolicy,
    Outcome,
    canonical_url,
)
from agora.pricewatch import service
from bench.harness import ROOT, LoadResult, agora_env, bench_services, free_port, server

TARGETS = 20_000
_TABLES = "pricewatch_sites, pricewatch_targets, pricewatch_price_changes"
BATCH = 100


@dataclass
class PageRun(LoadResult):
    """Pages fetched, and the CPU seconds each cost the process that fetched it: what a page
    costs, whatever else the machine is doing at the time."""

    cpu_per_page: float = 0.0


_FRONTIER_CONFIG = FrontierConfig(
    lease_ttl_ms=60_000,
    start_margin_ms=0,
    breaker_threshold=5,
    breaker_cooldown_ms=60_000,
    robots_ttl_ms=3_600_000,
)


async def plain_loop(base_url: str, concurrency: int, duration: float) -> PageRun:
    """The baseline: ``concurrency`` clients GET product pages in a closed loop."""
    result = PageRun("plain aiohttp loop")
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        counter = iter(range(10**9))

        async def client(deadline: float) -> None:
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                async with session.get(f"{base_url}/p/{next(counter) % TARGETS}") as response:
                    await response.read()
                    if response.status == 200:
                        result.latencies.append(time.perf_counter() - sent)
                    else:
                        result.errors += 1

        warm = time.perf_counter() + 1
        await asyncio.gather(*(client(warm) for _ in range(concurrency)))
        result.latencies.clear()
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(client(started + duration) for _ in range(concurrency)))
        result.elapsed = time.perf_counter() - started
        result.cpu_per_page = (time.process_time() - cpu) / max(1, len(result.latencies))
    return result


async def seed_targets(database_url: str, redis_url: str, base_url: str) -> None:
    """A fresh site with ``TARGETS`` pages, and a fresh frontier."""
    database, redis = Database(database_url, pool_size=2), Redis.from_url(redis_url)
    try:
        await redis.flushdb()
        async with database.unit_of_work() as session:
            await session.execute(text(f"TRUNCATE {_TABLES} CASCADE"))
            terms = service.SiteTerms(base_url, 0, 1000, 1, 1)
            frontier = Frontier(redis, _FRONTIER_CONFIG)
            await service.create_site(session, frontier, terms)
            pages = [(f"{base_url}/p/{n}", None) for n in range(TARGETS)]
            await service.add_targets(session, frontier, pages)
    finally:
        await redis.aclose()
        await database.dispose()


def served(base_url: str) -> int:
    """How many pages the shop has served."""
    return int(httpx.get(f"{base_url}/count").json()["served"])


def _cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


CRAWLER = (
    "agora crawl (lease, fetch, read, record, ack)",
    ["-m", "agora", "crawl", "--concurrency"],
)
FLOOR = ("floor: the same work, no crawler machinery", ["-m", "bench.crawl_floor"])


def crawl_rate(
    env: dict[str, str],
    base_url: str,
    concurrency: int,
    duration: float,
    warm_pages: int,
    side: tuple[str, list[str]] = CRAWLER,
) -> PageRun:
    """Pages/s of one crawler process (``agora crawl``, or the floor's), counted by the shop
    once it has served ``warm_pages`` pages (the first pass over the targets records every
    price: the steady state comes after it)."""
    name, arguments = side
    result = PageRun(name)
    process = subprocess.Popen([sys.executable, *arguments, str(concurrency)], env=env, cwd=ROOT)
    try:
        before = served(base_url)
        deadline = time.monotonic() + 60
        while served(base_url) - before < warm_pages and time.monotonic() < deadline:
            time.sleep(0.5)
        start, started = served(base_url), time.perf_counter()
        cpu = _cpu_seconds(process.pid)
        time.sleep(duration)
        result.elapsed = time.perf_counter() - started
        pages = served(base_url) - start
        result.cpu_per_page = (_cpu_seconds(process.pid) - cpu) / max(1, pages)
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
    result.latencies = [0.0] * pages
    return result


def alternate(
    env: dict[str, str], base_url: str, concurrency: int, duration: float, rounds: int
) -> tuple[list[PageRun], list[PageRun], list[PageRun]]:
    """The plain loop, the crawler and the floor in turns, ``rounds`` rounds each: every round
    of each."""
    plain, crawled, floor = [], [], []
    for round_ in range(rounds):
        plain.append(asyncio.run(plain_loop(base_url, concurrency, duration)))
        warm = TARGETS if round_ == 0 else TARGETS // 5  # later: a second or so of pages
        crawled.append(crawl_rate(env, base_url, concurrency, duration, warm))
        floor.append(crawl_rate(env, base_url, concurrency, duration, TARGETS // 5, FLOOR))
    return plain, crawled, floor


@dataclass
class Summary:
    """One side's rounds: the median of its pages/s and of its CPU a page (each taken on its
    own), and its best round by pages/s."""

    name: str
    pages_per_s: float
    cpu_per_page: float
    best: PageRun

    @classmethod
    def of(cls, rounds: list[PageRun]) -> Summary:
        """The summary of one side's rounds."""
        return cls(
            rounds[0].name,
            statistics.median(run.throughput for run in rounds),
            statistics.median(run.cpu_per_page for run in rounds),
            max(rounds, key=lambda run: run.throughput),
        )


async def scheduler(
    redis_url: str, urls: int, concurrency: int, duration: float
) -> tuple[float, LoadResult]:
    """Bytes per queued URL at ``urls`` URLs, then lease+ack operations/s with a null fetcher."""
    redis = Redis.from_url(redis_url)
    try:
        await redis.flushdb()
        frontier = Frontier(redis, _FRONTIER_CONFIG, prefix="agora:bench-crawl:")
        hosts = [f"shop{n}.example" for n in range(10)]
        for host in hosts:
            await frontier.configure_host(host, HostPolicy(0, 10_000, 3600, 3600))
            await frontier.store_robots(host, "", crawl_delay_ms=0, pause_ms=0)
        before = int((await redis.info("memory"))["used_memory"])
        await frontier.add(
            canonical_url(f"https://{hosts[n % len(hosts)]}/product/{n}-cotton-shirt")
            for n in range(urls)
        )
        per_url = (int((await redis.info("memory"))["used_memory"]) - before) / urls
        result = LoadResult("scheduler: lease + ack (null fetcher)")

        async def crawler(deadline: float) -> None:
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                leases, _ = await frontier.lease(BATCH)
                if not leases:
                    return  # every URL was leased once: the rate is over the time it took
                await frontier.ack([Ack(lease, Outcome.SAME) for lease in leases])
                elapsed = time.perf_counter() - sent
                result.latencies += [elapsed] * len(leases)

        started = time.perf_counter()
        await asyncio.gather(*(crawler(started + duration) for _ in range(concurrency)))
        result.elapsed = time.perf_counter() - started
        return per_url, result
    finally:
        await redis.flushdb()
        await redis.aclose()


def main() -> None:
    """Run the three measurements and print one table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--urls", type=int, default=100_000)
    args = parser.parse_args()
    urls = bench_services()
    port = free_port()
    shop = [sys.executable, "-m", "bench.crawl_pages", str(port)]
    with server(shop, agora_env(urls), port) as base_url:
        asyncio.run(seed_targets(urls.database_url, urls.redis_url, base_url))
        env = agora_env(urls, AGORA_CRAWLER_ALLOW_PRIVATE="true")
        rounds = alternate(env, base_url, args.concurrency, args.duration, args.rounds)
    per_url, leases = asyncio.run(scheduler(urls.redis_url, args.urls, 4, args.duration))
    baseline, crawl, floor = map(Summary.of, rounds)
    console = Console(width=140)
    console.print(_rounds_table(args.concurrency, args.rounds, baseline, crawl, floor))
    table = Table(title="Scheduler alone and Redis memory")
    for column in ("scenario", "count", "per second", "p50 ms", "p99 ms", "result"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    table.add_row(
        leases.name,
        str(leases.requests),
        f"{leases.throughput:,.0f}",
        f"{leases.median:.2f}",
        f"{leases.percentile(0.99):.2f}",
        "goal >= 5,000/s",
    )
    table.add_row(
        f"Redis bytes per queued URL ({args.urls:,} URLs)",
        *[""] * 4,
        f"{per_url:.0f} B (goal <= 256)",
    )
    console.print(table)


def _ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}x" if denominator else "-"


def _rounds_table(
    concurrency: int, rounds: int, baseline: Summary, crawl: Summary, floor: Summary
) -> Table:
    """Each side's medians and best round; the headline: median pages/s, crawler / plain loop;
    then the floor's, the least the crawler's work allows."""
    title = f"Crawler (concurrency {concurrency}, 20 KB pages, {rounds} alternating rounds each)"
    table = Table(title=title)
    columns = ("scenario", "pages/s, median", "CPU µs/page, median", "best round: pages/s")
    for column in (*columns, "best: CPU µs/page", "result"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for side, verdict in (
        (baseline, "baseline"),
        (crawl, f"{_ratio(crawl.pages_per_s, baseline.pages_per_s)} of medians (goal >= 0.7x)"),
        (floor, f"{_ratio(floor.pages_per_s, baseline.pages_per_s)} of medians"),
    ):
        table.add_row(
            side.name,
            f"{side.pages_per_s:,.0f}",
            f"{side.cpu_per_page * 1e6:,.0f}",
            f"{side.best.throughput:,.0f}",
            f"{side.best.cpu_per_page * 1e6:,.0f}",
            verdict,
        )
    best = _ratio(crawl.best.throughput, baseline.best.throughput)
    cpu = _ratio(baseline.cpu_per_page, crawl.cpu_per_page)
    table.add_row("ratios", "", "", "", "", f"best rounds {best}; plain/crawler CPU a page {cpu}")
    return table


if __name__ == "__main__":
    main()
