"""Crawler fixtures: settings for local sites, a frontier, an in-process crawler, and real
``agora crawl`` processes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from redis.asyncio import Redis

from agora.crawler.fetch import Fetcher, FetchLimits
from agora.crawler.frontier import Frontier, frontier_for
from agora.crawler.process import build_crawler
from agora.crawler.worker import Crawler, Page, Verdict
from agora.settings import Settings
from tests.support import ROOT

CRAWL_ENV = {
    "AGORA_CRAWLER_ALLOW_PRIVATE": "true",
    "AGORA_CRAWLER_LEASE_TTL": "3",
    "AGORA_CRAWLER_FETCH_TIMEOUT": "2",
    "AGORA_CRAWLER_FLUSH_INTERVAL": "0.2",
    "AGORA_CRAWLER_BREAKER_COOLDOWN": "5",
}


@pytest.fixture
def crawl_settings(settings: Settings) -> Settings:
    """The test settings with the crawler allowed on loopback sites and short timings."""
    return settings.model_copy(
        update={
            "crawler_allow_private": True,
            "crawler_lease_ttl": 3.0,
            "crawler_fetch_timeout": 2.0,
            "crawler_flush_interval": 0.2,
            "crawler_breaker_cooldown": 5.0,
        }
    )


@pytest.fixture
def frontier(redis: Redis, crawl_settings: Settings) -> Frontier:
    """The frontier as a crawler process configures it."""
    return frontier_for(redis, crawl_settings)


@dataclass
class PageLog:
    """A page handler that keeps what it was given (the crawler knows no prices)."""

    pages: list[Page] = field(default_factory=list)

    async def handle(self, pages: Sequence[Page]) -> Sequence[Verdict]:
        """Keep the pages; nothing changed."""
        self.pages.extend(pages)
        return [Verdict(changed=False) for _ in pages]


@asynccontextmanager
async def running_crawler(
    frontier: Frontier, settings: Settings, handler: Any, concurrency: int = 8
) -> AsyncIterator[Crawler]:
    """A crawler loop in this process until the block ends."""
    stop = asyncio.Event()
    fetcher = Fetcher(FetchLimits.from_settings(settings), connections=concurrency)
    crawler = build_crawler(frontier, fetcher, handler, settings, concurrency)
    task = asyncio.create_task(crawler.run(stop))
    try:
        yield crawler
    finally:
        stop.set()
        await task
        await fetcher.close()


@pytest.fixture
def crawler_process(
    service_env: dict[str, str],
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start real ``agora crawl`` processes: ``crawler_process(concurrency=4)``, with more
    command-line options in ``options``."""
    started: list[subprocess.Popen[bytes]] = []

    def start(
        concurrency: int = 4, options: Sequence[str] = (), **env: str
    ) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "agora", "crawl", "--concurrency", str(concurrency), *options],
            env={**service_env, **CRAWL_ENV, **env},
            cwd=ROOT,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
