"""A real ``agora crawl`` process's Prometheus metrics move as it crawls a local site."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from agora.crawler.frontier import Frontier, HostPolicy, canonical_url, host_of
from tests.crawler.sites import local_sites
from tests.support import free_port, wait_for

SITE = {"robots": "User-agent: *\nDisallow: /private/\n", "pages": 3}
URLS = ["/p/0", "/p/1", "/p/2", "/private/1"]
Samples = dict[tuple[str, str], float]


async def scrape(port: int) -> Samples:
    """The process's samples by (name, outcome or state label); empty until it answers."""
    try:
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    except httpx.TransportError:
        return {}
    return {
        (sample.name, sample.labels.get("outcome") or sample.labels.get("state") or ""): (
            sample.value
        )
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_a_crawl_moves_the_crawler_metrics(
    tmp_path: Path,
    frontier: Frontier,
    crawler_process: Callable[..., subprocess.Popen[bytes]],
) -> None:
    port = free_port()
    samples: Samples = {}

    async def answering() -> bool:
        samples.update(await scrape(port))
        return bool(samples)

    async def crawled() -> bool:
        """Every page fetched, then fetched again as a 304, and the gauges published."""
        samples.update(await scrape(port))
        return (
            samples.get(("agora_crawler_fetches_total", "ok"), 0) >= 3
            and samples.get(("agora_crawler_fetches_total", "not_modified"), 0) >= 3
            and ("agora_crawler_frontier_urls", "queued") in samples
        )

    with local_sites(tmp_path, SITE) as sites:
        crawler_process(concurrency=4, options=["--metrics-port", str(port)])
        await wait_for(answering, timeout=30)
        assert samples.get(("agora_crawler_fetches_total", "ok"), 0) == 0
        urls = [canonical_url(sites.base(0) + path) for path in URLS]
        await frontier.configure_host(host_of(urls[0]), HostPolicy(100, 1, 1, 1))
        await frontier.add(urls)
        await wait_for(crawled, timeout=40, interval=0.5)
        hits = sites.hits(0)

    assert samples[("agora_crawler_fetches_total", "robots_txt")] == 1
    # looked at again after the longest recrawl interval, never fetched
    assert samples[("agora_crawler_fetches_total", "robots_disallowed")] >= 1
    assert not [hit for hit in hits if hit.path.startswith("/private/")]
    fetched = sum(samples[("agora_crawler_fetches_total", o)] for o in ("ok", "not_modified"))
    # robots.txt and every page: one request each, timed
    assert samples[("agora_crawler_fetch_duration_seconds_count", "")] >= fetched + 1
    # four URLs due at once behind a 100 ms delay: all but the first waited for the gate
    assert samples[("agora_crawler_politeness_wait_seconds_count", "")] >= 3
    assert samples[("agora_crawler_politeness_wait_seconds_sum", "")] > 0
    queued = samples[("agora_crawler_frontier_urls", "queued")]
    assert queued + samples[("agora_crawler_frontier_urls", "leased")] == len(URLS)
