"""The crawler's floor: the work every crawled page needs, in the leanest loop that does it.

``concurrency`` fetchers share a plain ``aiohttp`` session (the baseline's: no per-request
timeout, no address check, no size bound, no redirects followed by hand) and a list of leases.
Leases come from Agora's frontier in batches (its Lua scripts: the scheduling a page cannot
skip), pages go to price watch in batches (``PriceWatchHandler``: the reading and the recording
a page cannot skip), then their leases are acknowledged in one call. No politeness gate for
redirect hops, no robots.txt, no circuit breaker, no metrics, no leases kept in hand ahead of
time, no acknowledgement of errors one by one (the benchmark's pages all answer 200).

``bench/crawler.py`` runs it as a process of its own, as it runs ``agora crawl``, with the same
settings and the same garbage-collector set-up: the crawler's work without the crawler's own
machinery. ``python -m bench.crawl_floor CONCURRENCY`` runs until SIGTERM, then records and
acknowledges what it fetched and gives back the leases it did not start.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import aiohttp
import uvloop

from agora.core.collector import freeze_start_up
from agora.core.db import Database
from agora.core.redis import create_redis
from agora.crawler.frontier import Ack, Frontier, Lease, Outcome, frontier_for
from agora.crawler.process import YOUNG_GC_THRESHOLD
from agora.crawler.worker import Page
from agora.pricewatch.crawl import PriceWatchHandler
from agora.settings import get_settings

BATCH = 100  # pages handed to price watch at once, as ``AGORA_CRAWLER_BATCH_SIZE``'s default
IDLE_S = 0.01


class FloorCrawler:
    """Lease, fetch, hand over, acknowledge: nothing else."""

    def __init__(self, frontier: Frontier, handler: PriceWatchHandler, concurrency: int) -> None:
        self.frontier = frontier
        self.handler = handler
        self.concurrency = concurrency
        self.leases: list[Lease] = []
        self.fetched: list[tuple[Lease, Page, str | None, str | None]] = []
        self.leasing = asyncio.Lock()
        self.flushing = asyncio.Lock()

    async def run(self, stop: asyncio.Event) -> None:
        """Crawl until ``stop`` is set."""
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            await asyncio.gather(*(self._fetcher(session, stop) for _ in range(self.concurrency)))
        await self._flush()
        await self.frontier.ack([Ack(lease, Outcome.RELEASED) for lease in self.leases])

    async def _fetcher(self, session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if not self.leases:
                await self._lease()
                continue
            lease = self.leases.pop()
            async with session.get(lease.url) as response:
                body = await response.read()
                headers = response.headers
                page = Page(lease.url, body, headers.get("Content-Type", ""))
                self.fetched.append(
                    (lease, page, headers.get("ETag"), headers.get("Last-Modified"))
                )
            if len(self.fetched) >= BATCH and not self.flushing.locked():
                await self._flush()

    async def _lease(self) -> None:
        """Leases for every fetcher, asked for by one of them at a time."""
        async with self.leasing:
            if self.leases:
                return
            leases, _ = await self.frontier.lease(2 * self.concurrency)
            self.leases = leases
        if not leases:
            await asyncio.sleep(IDLE_S)

    async def _flush(self) -> None:
        """The fetched pages to price watch in one batch, then their acknowledgements."""
        async with self.flushing:
            done, self.fetched = self.fetched, []
            if not done:
                return
            verdicts = await self.handler.handle([page for _, page, _, _ in done])
            acks = [
                Ack(lease, Outcome.CHANGED if verdict.changed else Outcome.SAME, 0,
                    verdict.urgency, etag, last_modified)
                for (lease, _, etag, last_modified), verdict in zip(done, verdicts, strict=True)
            ]  # fmt: skip
            await self.frontier.ack(acks)


async def crawl(concurrency: int) -> None:
    """Run the floor crawler on the settings' PostgreSQL and Redis until SIGTERM."""
    settings = get_settings()
    database = Database(settings.database_url or "", pool_size=4)
    redis = create_redis(settings.redis_url or "", settings)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    crawler = FloorCrawler(frontier_for(redis, settings), PriceWatchHandler(database), concurrency)
    freeze_start_up(young_threshold=YOUNG_GC_THRESHOLD)
    try:
        await crawler.run(stop)
    finally:
        await redis.aclose()
        await database.dispose()


if __name__ == "__main__":
    uvloop.run(crawl(int(sys.argv[1])))
