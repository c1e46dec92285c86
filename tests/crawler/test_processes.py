"""Several real ``agora crawl`` processes share one politeness gate per host."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from agora.crawler.frontier import Frontier, HostPolicy, canonical_url, host_of
from tests.crawler.sites import LocalSites, local_sites, max_in_flight, min_gap
from tests.support import wait_for

DELAYED = {"robots": "User-agent: *\nDisallow: /private/\nCrawl-delay: 0.25\n", "pages": 12}
SLOW = {"robots": "", "pages": 12, "sleep_ms": 400}
# 200 pages of 0.3 s, 4 at a time: 15 s of work, long enough for a second crawler to start.
BUSY = {"robots": "", "pages": 200, "sleep_ms": 300}


async def test_three_processes_keep_each_hosts_delay_and_concurrency(
    tmp_path: Path,
    frontier: Frontier,
    crawler_process: Callable[..., subprocess.Popen[bytes]],
) -> None:
    with local_sites(tmp_path, DELAYED, SLOW) as sites:
        pages = [f"/p/{n}" for n in range(12)]
        await _watch(frontier, sites, 0, [*pages, "/private/1", "/private/2"], HostPolicy(100, 3))
        await _watch(frontier, sites, 1, pages, HostPolicy(50, 2))
        for _ in range(3):
            crawler_process(concurrency=4)
        await wait_for(lambda: _all_fetched(sites, 12), timeout=90, interval=0.5)

        delayed, slow = sites.hits(0), sites.hits(1)
        assert not [hit for hit in delayed if hit.path.startswith("/private/")]
        assert min_gap(delayed) >= 0.25 - 0.005
        assert max_in_flight(delayed) == 1
        assert min_gap(slow) >= 0.05 - 0.005
        assert max_in_flight(slow) == 2
        assert sorted(hit.path for hit in slow if hit.path != "/robots.txt") == sorted(pages)


async def test_crawlers_sharing_a_host_each_get_their_share_of_its_slots(
    tmp_path: Path,
    frontier: Frontier,
    crawler_process: Callable[..., subprocess.Popen[bytes]],
) -> None:
    with local_sites(tmp_path, BUSY) as sites:
        await _watch(frontier, sites, 0, [f"/p/{n}" for n in range(200)], HostPolicy(0, 4))
        crawler_process(concurrency=8, AGORA_CRAWLER_CONTACT_URL="http://first.test/")
        await wait_for(lambda: _pages_by(sites, "first.test", 4), timeout=60, interval=0.2)
        crawler_process(concurrency=8, AGORA_CRAWLER_CONTACT_URL="http://second.test/")
        # Alone, the first would take every slot back as each fetch ends: the second starves.
        await wait_for(lambda: _pages_by(sites, "second.test", 8), timeout=60, interval=0.2)

        pages = [hit for hit in sites.hits(0) if hit.path.startswith("/p/")]
        first = [hit for hit in pages if "first.test" in hit.agent]
        second = [hit for hit in pages if "second.test" in hit.agent]
        assert max_in_flight(pages) <= 4
        assert max_in_flight(second) <= 2
        # what the first leased once the second counted (its first fetch had started) is capped
        assert max_in_flight([hit for hit in first if hit.start > second[0].end]) <= 2


async def _pages_by(sites: LocalSites, agent: str, count: int) -> bool:
    return len([hit for hit in sites.hits(0) if agent in hit.agent]) >= count


async def _watch(
    frontier: Frontier, sites: LocalSites, index: int, paths: list[str], policy: HostPolicy
) -> None:
    urls = [canonical_url(sites.base(index) + path) for path in paths]
    await frontier.configure_host(host_of(urls[0]), policy)
    await frontier.add(urls)


async def _all_fetched(sites: LocalSites, pages: int) -> bool:
    return all(
        len({hit.path for hit in sites.hits(index) if hit.path.startswith("/p/")}) == pages
        for index in (0, 1)
    )
