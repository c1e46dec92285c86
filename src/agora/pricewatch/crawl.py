"""Price watch as the crawler's page handler: each batch of pages is one transaction."""

from __future__ import annotations

from collections.abc import Sequence

from agora.core.db import Database
from agora.core.redis import create_redis
from agora.crawler.frontier import frontier_for
from agora.crawler.process import run_crawler
from agora.crawler.worker import Page, Verdict
from agora.pricewatch import readings, service
from agora.settings import Settings


class PriceWatchHandler:
    """Reads prices out of fetched pages and records what changed."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def handle(self, pages: Sequence[Page]) -> Sequence[Verdict]:
        """Record the batch's readings, changes and undercut events in one transaction."""
        async with self.database.unit_of_work() as session:
            verdicts = await readings.record_pages(
                session, [(p.url, p.body, p.content_type) for p in pages]
            )
        return [Verdict(changed, urgency) for changed, urgency in verdicts]


async def run(settings: Settings, concurrency: int) -> None:
    """A price-watch crawler process: sync the frontier with the watched pages, then crawl."""
    assert settings.database_url is not None
    assert settings.redis_url is not None
    database = Database(settings.database_url, pool_size=4)
    redis = create_redis(settings.redis_url, settings)
    frontier = frontier_for(redis, settings)
    try:
        async with database.unit_of_work() as session:
            await service.sync_frontier(session, frontier)
        await run_crawler(frontier, PriceWatchHandler(database), settings, concurrency)
    finally:
        await redis.aclose()
        await database.dispose()
