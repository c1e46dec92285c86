"""The crawler's and price watch's parts of a snapshot: per host queue, fetches, errors and next
allowed start with pages/s overall, read through ``crawler.service.crawl_stats`` (the figures of
``GET /api/v1/crawler/stats``); the current undercuts and the newest price changes, read through
price watch's service.

Neither depends on the time range: they are what is true now. Rows are capped, a page's URL is
shown as its host and path, and long names are cut, so these parts stay well within half the
snapshot's budget whatever the frontier and the tables hold.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

from agora.core.dependencies import AppServices
from agora.crawler import service as crawler
from agora.crawler.frontier import frontier_for
from agora.crawler.service import HostStats
from agora.dashboard.ranges import TimeRange
from agora.dashboard.snapshot import Section
from agora.pricewatch import service as pricewatch

MAX_HOSTS = 12
MAX_UNDERCUTS = 8
MAX_CHANGES = 8
MAX_LABEL_CHARS = 60


async def crawl_section(services: AppServices, _: dt.datetime, __: TimeRange) -> dict[str, Any]:
    """The busiest hosts (most fetches in flight, then most queued) and pages/s overall."""
    stats = await crawler.crawl_stats(frontier_for(services.redis, services.settings))
    busiest = sorted(stats.hosts, key=lambda host: (-host.leased, -host.queued, host.host))
    return {
        "crawl": {
            "pages_per_second": round(stats.pages_per_second, 1),
            "hosts_total": len(stats.hosts),
            "hosts": [_host(host) for host in busiest[:MAX_HOSTS]],
        }
    }


def _host(host: HostStats) -> dict[str, Any]:
    next_start = host.next_allowed_start_at
    return {
        "host": shorten(host.host),
        "queued": host.queued,
        "leased": host.leased,
        "fetched": host.fetched,
        "errors": host.errors,
        "next_allowed_start_at": next_start.isoformat() if next_start else None,
    }


async def pricewatch_section(
    services: AppServices, _: dt.datetime, __: TimeRange
) -> dict[str, Any]:
    """Pages priced below our variant (widest gap first) and the newest price changes."""
    async with services.database.sessionmaker() as session:
        undercuts = await pricewatch.undercuts(session, MAX_UNDERCUTS)
        changes = await pricewatch.recent_changes(session, MAX_CHANGES)
    return {
        "pricewatch": {
            "undercuts": [
                {
                    "page": page_label(undercut.target.url),
                    "our_price": undercut.our_price,
                    "their_price": undercut.target.price_amount,
                    "gap": undercut.gap,
                    "currency": undercut.target.currency,
                }
                for undercut in undercuts
            ],
            "changes": [
                {
                    "at": change.observed_at.isoformat(),
                    "page": page_label(change.url),
                    "price": change.price_amount,
                    "previous": change.previous_amount,
                    "currency": change.currency,
                    "in_stock": change.in_stock,
                }
                for change in changes
            ],
        }
    }


def page_label(url: str) -> str:
    """A page as its host and path (and query), shortened."""
    parts = urlsplit(url)
    return shorten(parts.netloc + parts.path + (f"?{parts.query}" if parts.query else ""))


def shorten(text: str) -> str:
    """``text`` cut to ``MAX_LABEL_CHARS``, the middle giving way (both ends tell pages apart)."""
    if len(text) <= MAX_LABEL_CHARS:
        return text
    half = (MAX_LABEL_CHARS - 1) // 2
    return f"{text[:half]}…{text[-half:]}"


SECTIONS = (Section(crawl_section), Section(pricewatch_section))
