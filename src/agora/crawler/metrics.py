"""The crawler's Prometheus metrics, exported like every Agora process's (``/metrics``).

A crawler process counts what became of each URL it leased, times each HTTP request it makes,
records the politeness waits (how long a due URL or a request waited for its host's gate) and
sets the frontier's sizes, which every process reads alike, so several processes writing the
gauge into one multiprocess folder agree (``mostrecent``).
"""

from __future__ import annotations

import enum
import functools

from prometheus_client import Counter, Gauge, Histogram

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_WAITS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)


class FetchOutcome(enum.StrEnum):
    """What became of a leased URL, as the ``outcome`` label says it."""

    OK = "ok"
    NOT_MODIFIED = "not_modified"
    THROTTLED = "throttled"
    ERROR = "error"
    SKIPPED = "skipped"
    REFUSED = "refused"
    ROBOTS_DISALLOWED = "robots_disallowed"
    ROBOTS_TXT = "robots_txt"
    HELD_BACK = "held_back"


FETCHES = Counter("agora_crawler_fetches_total", "Leased URLs by what became of them", ["outcome"])
FETCH_SECONDS = Histogram(
    "agora_crawler_fetch_duration_seconds",
    "Time of one HTTP request of the crawler, from sending it to the last byte of the body",
    buckets=_SECONDS,
)
POLITENESS_WAIT_SECONDS = Histogram(
    "agora_crawler_politeness_wait_seconds",
    "How long a due URL, or a request no lease covers, waited for its host's gate to open",
    buckets=_WAITS,
)
FRONTIER_URLS = Gauge(
    "agora_crawler_frontier_urls",
    "URLs in the frontier by state (queued includes those waiting for their next crawl)",
    ["state"],
    multiprocess_mode="mostrecent",
)


@functools.cache
def fetch_counter(outcome: FetchOutcome) -> Counter:
    """The fetch counter of one outcome (a label lookup costs more than the increment)."""
    return FETCHES.labels(outcome)


def set_frontier_sizes(queued: int, leased: int) -> None:
    """Publish the frontier's sizes."""
    FRONTIER_URLS.labels("queued").set(queued)
    FRONTIER_URLS.labels("leased").set(leased)
