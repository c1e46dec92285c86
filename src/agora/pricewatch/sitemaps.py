"""Finding product pages in a site's sitemaps (``robots.txt`` ``Sitemap:`` lines, then
``/sitemap.xml``), following sitemap indexes, gzip included, within fixed bounds.

Every fetch goes through the crawler's ``HostGate``: robots.txt is read through the host's gate
(and kept for the crawlers), a sitemap robots.txt disallows is not read, and each request waits
for its host's next allowed start like any crawl. A site whose robots.txt cannot be read, or
whose gate stays closed, is refused with ``HopRefused``: nothing of it may be read now.

The API imports this module on its first discovery only (see ``service.discover``).
"""

from __future__ import annotations

import gzip
import io
import math
import re
from collections.abc import Iterable

from parsel import Selector

from agora.core.errors import ServiceUnavailable
from agora.core.netguard import UnsafeTarget
from agora.crawler.fetch import HopRefused
from agora.crawler.frontier import Frontier, canonical_url, host_of
from agora.crawler.gate import HostGate
from agora.crawler.process import polite_fetcher
from agora.settings import Settings

MAX_SITEMAPS = 50
MAX_URLS = 50_000
_GZIP_MAGIC = b"\x1f\x8b"
ROBOTS_UNREADABLE = "robots.txt cannot be read"


async def listed_pages(frontier: Frontier, settings: Settings, base_url: str) -> list[str]:
    """The page URLs a site's sitemaps list, read through a short-lived polite fetcher; 503
    ``site_unavailable`` (with the gate's ``Retry-After``) when the site may not be read now."""
    try:
        async with polite_fetcher(frontier, settings, connections=4) as gate:
            return await sitemap_urls(gate, base_url)
    except HopRefused as refused:
        wait = refused.retry_after_s
        raise ServiceUnavailable(
            f"{host_of(base_url)} cannot be read now: {refused.reason}.",
            code="site_unavailable",
            headers={"Retry-After": str(math.ceil(wait))} if wait else None,
        ) from refused


async def sitemap_urls(gate: HostGate, base_url: str) -> list[str]:
    """Every page URL the site's sitemaps list (at most ``MAX_URLS``)."""
    root = base_url.rstrip("/")
    rules = await gate.rules(canonical_url(root))
    if rules is None:
        raise HopRefused(f"{root}/robots.txt", ROBOTS_UNREADABLE)
    to_read = list(rules.sitemaps) or [f"{root}/sitemap.xml"]
    seen: set[str] = set()
    pages: list[str] = []
    while to_read and len(seen) < MAX_SITEMAPS and len(pages) < MAX_URLS:
        sitemap = to_read.pop(0)
        if sitemap in seen:
            continue
        seen.add(sitemap)
        result = await gate.fetch(sitemap)
        if result.status != 200:
            continue
        is_index, locations = _read(result.body, gate.fetcher.limits.max_bytes)
        (to_read if is_index else pages).extend(locations)
    return pages[:MAX_URLS]


def _read(body: bytes, max_bytes: int) -> tuple[bool, list[str]]:
    """Whether a sitemap is an index, and the locations it lists."""
    if body.startswith(_GZIP_MAGIC):
        with gzip.GzipFile(fileobj=io.BytesIO(body)) as unzipped:
            body = unzipped.read(max_bytes)
    selector = Selector(body=body, type="xml")
    is_index = bool(selector.xpath("/*[local-name()='sitemapindex']"))
    locations = selector.xpath("//*[local-name()='loc']/text()").getall()
    return is_index, [location.strip() for location in locations if location.strip()]


def matching(urls: Iterable[str], pattern: str, host: str) -> list[str]:
    """The URLs of ``host`` whose text matches ``pattern`` (a regular expression)."""
    expression = re.compile(pattern)
    return [url for url in urls if _host(url) == host and expression.search(url)]


def _host(url: str) -> str:
    try:
        return host_of(canonical_url(url))
    except UnsafeTarget:
        return ""
