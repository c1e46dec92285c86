"""What the crawler is doing, for the stats endpoint and the dashboard: per host and overall."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from agora.crawler.frontier import Frontier, as_text

RATE_WINDOW_S = 10
_HOST_FIELDS = ("leased", "fetched", "notmod", "errors", "next", "pause", "open")


@dataclass(frozen=True)
class HostStats:
    """One host: URLs waiting, leased, fetched (of which 304), errors, next allowed start."""

    host: str
    queued: int
    leased: int
    fetched: int
    not_modified: int
    errors: int
    next_allowed_start_at: dt.datetime | None


@dataclass(frozen=True)
class CrawlStats:
    """Every host known to the frontier, and pages fetched per second over the last seconds."""

    hosts: list[HostStats]
    pages_per_second: float


async def crawl_stats(frontier: Frontier) -> CrawlStats:
    """The frontier's figures, read in two Redis round trips."""
    redis = frontier.redis
    hosts = sorted(as_text(value) for value in await redis.smembers(frontier.key("known")))
    second = int(time.time())
    async with redis.pipeline(transaction=False) as pipeline:
        for host in hosts:
            pipeline.zcard(frontier.key("q", host))
            pipeline.hmget(frontier.key("host", host), _HOST_FIELDS)
        pipeline.mget(
            [frontier.key("rate", str(second - ago)) for ago in range(1, RATE_WINDOW_S + 1)]
        )
        replies = await pipeline.execute()
    rows = [_host_stats(host, replies[2 * i], replies[2 * i + 1]) for i, host in enumerate(hosts)]
    fetched = sum(int(value) for value in replies[-1] if value is not None)
    return CrawlStats(rows, fetched / RATE_WINDOW_S)


def _host_stats(host: str, queued: int, fields: list[bytes | None]) -> HostStats:
    leased, fetched, notmod, errors, *gates = (int(value or 0) for value in fields)
    next_start = max(gates)
    return HostStats(
        host=host,
        queued=queued,
        leased=max(leased, 0),
        fetched=fetched,
        not_modified=notmod,
        errors=errors,
        next_allowed_start_at=(
            dt.datetime.fromtimestamp(next_start / 1000, dt.UTC) if next_start else None
        ),
    )
