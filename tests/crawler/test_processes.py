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
