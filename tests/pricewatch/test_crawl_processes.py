"""A crawler process killed mid-crawl loses no URL, and no price change is recorded twice."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from agora.core.db import Database
from agora.crawler.frontier import Frontier
from tests.crawler.conftest import CRAWL_ENV
from tests.crawler.sites import LocalSites, local_sites
from tests.pricewatch.support import changes_per_target, watch
from tests.support import wait_for

LEASE_TTL_S = float(CRAWL_ENV["AGORA_CRAWLER_LEASE_TTL"])
# Pages take 0.3 s: a URL back in its queue at its lease's expiry waits at most that long for a
# slot of its host (8, all busy), well within the second allowed. 200 pages a host, 8 at a time,
# keep both processes crawling for about 7.5 s, past the kill at about 4 s.
PAGES = 200
SLOW = {"robots": "", "pages": PAGES, "sleep_ms": 300}


async def test_sigkill_mid_crawl_loses_nothing_and_records_each_change_once(
    tmp_path: Path,
    database: Database,
    frontier: Frontier,
    crawler_process: Callable[..., subprocess.Popen[bytes]],
) -> None:
    with local_sites(tmp_path, SLOW, SLOW) as sites:
        paths = [f"/p/{n}" for n in range(PAGES)]
        targets = []
        for index in (0, 1):
            targets += await watch(
                database,
                frontier,
                sites.base(index),
                paths,
                max_concurrency=8,
                recrawl_min_s=3600,
                recrawl_max_s=3600,
            )
        doomed = crawler_process(concurrency=16)
        await wait_for(lambda: _pages_started(sites, 8), timeout=60)
        survivor = crawler_process(concurrency=16)
        await asyncio.sleep(4)  # both crawl: the one killed holds leases and unacknowledged pages
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        killed_at = time.time()

        await wait_for(lambda: _all_recorded(database, len(targets)), timeout=60, interval=0.2)
        await asyncio.sleep(1)
        assert survivor.poll() is None
        assert set((await changes_per_target(database)).values()) == {1}
        fetched_again = [
            (page, starts)
            for page, starts in _starts_by_page(sites).items()
            if starts[0] < killed_at and len(starts) > 1
        ]
        assert fetched_again, "the killed process held no lease"
        for page, starts in fetched_again:
            assert starts[1] <= killed_at + LEASE_TTL_S + 1, (page, starts, killed_at)


async def _pages_started(sites: LocalSites, count: int) -> bool:
    return len([hit for hit in sites.hits() if hit.path.startswith("/p/")]) >= count


async def _all_recorded(database: Database, count: int) -> bool:
    return len(await changes_per_target(database)) == count


def _starts_by_page(sites: LocalSites) -> dict[tuple[int, str], list[float]]:
    starts: dict[tuple[int, str], list[float]] = {}
    for hit in sites.hits():
        if hit.path.startswith("/p/"):
            starts.setdefault((hit.site, hit.path), []).append(hit.start)
    return starts
