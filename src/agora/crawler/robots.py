"""robots.txt: read once per host and TTL for every crawler process, obeyed on every fetch.

A host's robots.txt is fetched with a lease of one of its URLs, or, for a host reached by a
redirect or a sitemap read, through the host's gate (``gate.py``), so the fetch passes the gate
like any page; while a host's robots.txt is unknown its gate lets one fetch through at a
time, so the Crawl-delay it names is known before a second start. As RFC 9309 says: a 4xx
answer means everything is allowed, a 5xx or no answer means nothing is, and the host is paused
for ``AGORA_CRAWLER_ROBOTS_RETRY`` seconds before robots.txt is tried again. The text is kept in
Redis for ``AGORA_CRAWLER_ROBOTS_TTL`` and parsed (``protego``) once per process.
"""

from __future__ import annotations

import time

from protego import Protego

from agora.crawler.fetch import Fetcher
from agora.crawler.frontier import Frontier, host_of

USER_AGENT_PRODUCT = "AgoraPriceWatch"


class RobotsBook:
    """The robots.txt rules of the hosts this process crawls."""

    def __init__(self, frontier: Frontier, fetcher: Fetcher, *, retry_s: float) -> None:
        self.frontier = frontier
        self.fetcher = fetcher
        self.retry_ms = int(retry_s * 1000)
        self._parsed: dict[str, tuple[float, Protego]] = {}

    def parsed(self, host: str) -> Protego | None:
        """The host's rules if this process parsed them within their TTL (no await: the
        crawler asks on every page)."""
        cached = self._parsed.get(host)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        return None

    async def rules(self, host: str) -> Protego | None:
        """The host's rules, or None when its robots.txt must be fetched first."""
        cached = self.parsed(host)
        if cached is not None:
            return cached
        body, ttl_ms = await self.frontier.robots(host)
        if body is None:
            return None
        rules = Protego.parse(body)
        self._parsed[host] = (time.monotonic() + ttl_ms / 1000, rules)
        return rules

    async def learn(self, url: str) -> None:
        """Fetch the robots.txt of the host of ``url`` (canonical), and keep it; the caller
        holds the way through the host's gate."""
        host = host_of(url)
        scheme = url.split("://", 1)[0]
        result = await self.fetcher.fetch(f"{scheme}://{host}/robots.txt")
        if result.status == 200:
            body = result.body.decode("utf-8", errors="replace")
            delay = Protego.parse(body).crawl_delay(USER_AGENT_PRODUCT) or 0
            await self.frontier.store_robots(
                host, body, crawl_delay_ms=int(delay * 1000), pause_ms=0
            )
        elif 400 <= result.status < 500:
            await self.frontier.store_robots(host, "", crawl_delay_ms=0, pause_ms=0)
        else:
            await self.frontier.store_robots(host, None, crawl_delay_ms=0, pause_ms=self.retry_ms)


def allows(rules: Protego, url: str) -> bool:
    """Whether ``rules`` let Agora's crawler fetch ``url``."""
    return bool(rules.can_fetch(url, USER_AGENT_PRODUCT))
