"""The crawler against local test sites: robots.txt, conditional requests, back-off, slow hosts,
redirects to another host.

Every site is a real HTTP server in its own process with its own access log (``testsite.py``);
the crawler runs in this process on the real Redis.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from agora.crawler.frontier import Frontier, HostPolicy, canonical_url, host_of, url_id
from agora.settings import Settings
from tests.crawler.conftest import PageLog, running_crawler
from tests.crawler.sites import LocalSites, local_sites, max_in_flight, min_gap
from tests.support import wait_for

ROBOTS = "User-agent: *\nDisallow: /private/\nCrawl-delay: 0.2\n"
ROBOTS_SLOW = "User-agent: *\nDisallow: /private/\nCrawl-delay: 0.3\n"


async def _watch(frontier: Frontier, base: str, paths: list[str], policy: HostPolicy) -> None:
    urls = [canonical_url(base + path) for path in paths]
    await frontier.configure_host(host_of(urls[0]), policy)
    await frontier.add(urls)


def _paths(sites: LocalSites, index: int) -> list[str]:
    return [hit.path for hit in sites.hits(index)]


async def test_robots_txt_is_read_first_and_obeyed(
    tmp_path: Path, frontier: Frontier, crawl_settings: Settings
) -> None:
    with local_sites(tmp_path, {"robots": ROBOTS, "pages": 4}) as sites:
        paths = [f"/p/{n}" for n in range(4)] + ["/private/1", "/private/2"]
        await _watch(frontier, sites.base(0), paths, HostPolicy(0, 4, 3600, 3600))
        handler = PageLog()
        async with running_crawler(frontier, crawl_settings, handler):
            await wait_for(lambda: _count(handler, 4), timeout=20)
            await asyncio.sleep(0.5)
        fetched = _paths(sites, 0)
        assert fetched[0] == "/robots.txt"
        assert sorted(fetched[1:]) == [f"/p/{n}" for n in range(4)]
        assert min_gap(sites.hits(0)) >= 0.2 - 0.005


async def test_a_stopped_crawler_gives_back_the_leases_it_held(
    tmp_path: Path, frontier: Frontier, crawl_settings: Settings
) -> None:
    with local_sites(tmp_path, {"robots": "", "pages": 100, "sleep_ms": 100}) as sites:
        paths = [f"/p/{n}" for n in range(100)]
        await _watch(frontier, sites.base(0), paths, HostPolicy(0, 100, 3600, 3600))
        handler = PageLog()
        async with running_crawler(frontier, crawl_settings, handler, concurrency=4):
            await wait_for(lambda: _count(handler, 4), timeout=20)
        assert await frontier.sizes() == (100, 0)  # none left leased: no lease TTL to wait


async def _count(handler: PageLog, count: int) -> bool:
    return len(handler.pages) >= count


async def test_a_redirect_to_another_host_passes_its_robots_txt_and_gate(
    tmp_path: Path, frontier: Frontier, crawl_settings: Settings
) -> None:
    origin = {"robots": "", "redirect_to": 1}
    target = {"robots": ROBOTS_SLOW, "pages": 12}
    with local_sites(tmp_path, origin, target) as sites:
        hops = [f"/go/p/{n}" for n in range(8)] + ["/go/private/1", "/go/private/2"]
        await _watch(frontier, sites.base(0), hops, HostPolicy(0, 4, 3600, 3600))
        await _watch(frontier, sites.base(1), ["/p/8", "/p/9"], HostPolicy(0, 2, 3600, 3600))
        handler = PageLog()
        async with running_crawler(frontier, crawl_settings, handler):
            await wait_for(lambda: _count(handler, 10), timeout=40)
            await asyncio.sleep(0.5)
        redirected = {page.url.rsplit("/go", 1)[-1] for page in handler.pages if "/go/" in page.url}
        assert redirected == {f"/p/{n}" for n in range(8)}
        assert {"/go/private/1", "/go/private/2"} <= set(_paths(sites, 0))
        landed = sites.hits(1)
        assert not [hit for hit in landed if hit.path.startswith("/private/")]
        assert [hit.path for hit in landed].count("/robots.txt") == 1
        assert min_gap(landed) >= 0.3 - 0.005
        assert max_in_flight(landed) <= 2


async def test_an_unchanged_page_is_recrawled_with_a_304(
    tmp_path: Path, frontier: Frontier, crawl_settings: Settings
) -> None:
    with local_sites(tmp_path, {"robots": 404, "pages": 1}) as sites:
        await _watch(frontier, sites.base(0), ["/p/0"], HostPolicy(0, 1, 1, 1))
        handler = PageLog()
        async with running_crawler(frontier, crawl_settings, handler):
            await wait_for(lambda: _statuses(sites, [200, 304, 304]), timeout=20)
            sites.set_price(0, "/p/0", 777)
            await wait_for(lambda: _statuses(sites, [200, 304, 304, 200]), timeout=20, interval=0.1)
        assert len(handler.pages) == 2  # a 304 hands nothing over
        assert b"7.77" in handler.pages[-1].body


async def _statuses(sites: LocalSites, expected: list[int]) -> bool:
    statuses = [hit.status for hit in sites.hits(0) if hit.path != "/robots.txt"]
    return statuses[: len(expected)] == expected


async def test_a_429_backs_the_host_off_for_its_retry_after(
    tmp_path: Path, frontier: Frontier, crawl_settings: Settings
) -> None:
    site = {"robots": "", "pages": 3, "throttle": 1, "retry_after": 2}
    with local_sites(tmp_path, site) as sites:
        await _watch(
            frontier, sites.base(0), ["/p/0", "/p/1", "/p/2"], HostPolicy(0, 1, 3600, 3600)
        )
        handler = PageLog()
        async with running_crawler(frontier, crawl_settings, handler):
            await wait_for(lambda: _count(handler, 3), timeout=20)
        hits = [hit for hit in sites.hits(0) if hit.path != "/robots.txt"]
        throttled = [hit for hit in hits if hit.status == 429]
        assert len(throttled) == 1
        later = [hit for hit in hits if hit.start > throttled[0].start]
        assert later
        assert min(hit.start for hit in later) >= throttled[0].end + 2 - 0.05


async def test_an_unreachable_robots_txt_pauses_the_host(
    tmp_path: Path, frontier: Frontier, crawl_settings: Settings
) -> None:
    with local_sites(tmp_path, {"robots": 503, "pages": 2}, {"robots": "", "pages": 2}) as sites:
        for index in (0, 1):
            await _watch(
                frontier, sites.base(index), ["/p/0", "/p/1"], HostPolicy(0, 2, 3600, 3600)
            )
        handler = PageLog()
        async with running_crawler(frontier, crawl_settings, handler):
            await wait_for(lambda: _count(handler, 2), timeout=20)
            await asyncio.sleep(1)
        assert _paths(sites, 0) == ["/robots.txt"]
        assert sorted(_paths(sites, 1)) == ["/p/0", "/p/1", "/robots.txt"]


async def test_a_hanging_host_costs_the_others_at_most_five_percent(
    tmp_path: Path, frontier: Frontier, crawl_settings: Settings
) -> None:
    normal = {"robots": "", "pages": 20}
    with local_sites(tmp_path, normal, normal, normal, {"hang": True, "pages": 20}) as sites:
        alone = await _throughput(sites, frontier, crawl_settings, hanging=False)
        await frontier.redis.flushdb()
        beside = await _throughput(sites, frontier, crawl_settings, hanging=True)
    assert alone > 40
    assert beside >= 0.95 * alone, (beside, alone)


async def _throughput(
    sites: LocalSites, frontier: Frontier, settings: Settings, *, hanging: bool
) -> int:
    """Pages the three normal hosts answered in a fixed window (their gates bound the rate)."""
    paths = [f"/p/{n}" for n in range(20)]
    for index in range(3):
        await _watch(frontier, sites.base(index), paths, HostPolicy(100, 1, 1, 1))
    if hanging:
        await frontier.store_robots(host_of(sites.base(3) + "/"), "", crawl_delay_ms=0, pause_ms=0)
        await _watch(frontier, sites.base(3), paths, HostPolicy(0, 4, 1, 1))
    first = len(sites.hits())
    async with running_crawler(frontier, settings, PageLog(), concurrency=8):
        await asyncio.sleep(1.0)
        started = sites.hits()[-1].end if len(sites.hits()) > first else 0.0
        await asyncio.sleep(3.0)
    window = [hit for hit in sites.hits()[first:] if started < hit.start <= started + 3.0]
    return sum(1 for hit in window if hit.site != sites.ports[3])


async def test_a_lease_held_unused_for_half_its_ttl_is_given_back(
    tmp_path: Path, frontier: Frontier, crawl_settings: Settings
) -> None:
    # One fetcher stuck on a host that never answers (for longer than the test) and one lease
    # in hand that it cannot take: that lease goes back after half the lease TTL, so that its
    # slot may serve another fetch, rather than being held until it expires.
    settings = crawl_settings.model_copy(update={"crawler_fetch_timeout": 30.0})
    ttl_ms = settings.crawler_lease_ttl * 1000
    with local_sites(tmp_path, {"hang": True, "pages": 3}) as sites:
        urls = [canonical_url(f"{sites.base(0)}/p/{n}") for n in range(3)]
        await frontier.store_robots(host_of(urls[0]), "", crawl_delay_ms=0, pause_ms=0)
        await _watch(
            frontier, sites.base(0), [f"/p/{n}" for n in range(3)], HostPolicy(0, 4, 3600, 3600)
        )
        async with running_crawler(frontier, settings, PageLog(), concurrency=1):
            # one lease fetching, one in hand: nothing more is leased while both are held
            first = await wait_for(lambda: _leased(frontier, urls, 2), timeout=20)
            third = await wait_for(lambda: _leased_other_than(frontier, urls, first), timeout=20)
        # the third URL was leased once the lease in hand was given back: before the first two
        # leases expired, and no sooner than half their TTL after they were granted
        assert third < max(first.values()) + ttl_ms
        assert third >= min(first.values()) + ttl_ms / 2


async def _leased(frontier: Frontier, urls: list[str], count: int) -> dict[str, float]:
    """The leased URLs among ``urls`` by lease expiry (Redis ms), once ``count`` are."""
    scores = await frontier.redis.zmscore(frontier.key("leases"), [url_id(url) for url in urls])
    leased = {url: score for url, score in zip(urls, scores, strict=True) if score is not None}
    return leased if len(leased) >= count else {}


async def _leased_other_than(
    frontier: Frontier, urls: list[str], first: dict[str, float]
) -> float | None:
    """The lease expiry of a URL leased that is not one of ``first``, if any."""
    leased = await _leased(frontier, [url for url in urls if url not in first], 1)
    return max(leased.values(), default=None)
