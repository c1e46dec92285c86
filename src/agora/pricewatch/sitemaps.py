"""Finding product pages in a site's sitemaps (``robots.txt`` ``Sitemap:`` lines, then
``/sitemap.xml``), following sitemap indexes, gzip included, within fixed bounds."""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Iterable

from parsel import Selector
from protego import Protego

from agora.core.netguard import UnsafeTarget
from agora.crawler.fetch import Fetcher
from agora.crawler.frontier import canonical_url, host_of

MAX_SITEMAPS = 50
MAX_URLS = 50_000
_GZIP_MAGIC = b"\x1f\x8b"


async def sitemap_urls(fetcher: Fetcher, base_url: str) -> list[str]:
    """Every page URL the site's sitemaps list (at most ``MAX_URLS``)."""
    root = base_url.rstrip("/")
    robots = await fetcher.fetch(f"{root}/robots.txt")
    listed = []
    if robots.status == 200:
        listed = list(Protego.parse(robots.body.decode("utf-8", errors="replace")).sitemaps)
    to_read = listed or [f"{root}/sitemap.xml"]
    seen: set[str] = set()
    pages: list[str] = []
    while to_read and len(seen) < MAX_SITEMAPS and len(pages) < MAX_URLS:
        sitemap = to_read.pop(0)
        if sitemap in seen:
            continue
        seen.add(sitemap)
        result = await fetcher.fetch(sitemap)
        if result.status != 200:
            continue
        is_index, locations = _read(result.body, fetcher.limits.max_bytes)
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
