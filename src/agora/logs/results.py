"""What the log platform's service functions answer: plain typed records.

They are the API's response models as they are (FastAPI serialises dataclasses), and what other
readers of the logs (the live dashboard) consume.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RejectedLine:
    """A line refused at ingest: its 1-based number in the body, and why."""

    line: int
    reason: str


@dataclass(frozen=True)
class IngestResult:
    """How many lines of a body were accepted (buffered), and which were refused."""

    accepted: int
    rejected: list[RejectedLine]


@dataclass(frozen=True)
class LogLine:
    """One stored log line."""

    id: int
    ts: dt.datetime
    service: str | None
    host: str | None
    level: str | None
    message: str | None
    method: str | None
    path: str | None
    route: str | None
    status: int | None
    duration_ms: float | None
    bytes: int | None
    ip: str | None
    user_agent: str | None
    request_id: str | None
    trace_id: str | None
    attrs: dict[str, Any]


@dataclass(frozen=True)
class SearchPage:
    """Matching lines, newest first, and the cursor of the next (older) page."""

    items: list[LogLine]
    next_cursor: str | None


@dataclass(frozen=True)
class StatsPoint:
    """One time bucket of a series: its start, counts, error rate and latency percentiles."""

    ts: dt.datetime
    count: int
    errors: int
    error_rate: float
    p50: float | None
    p95: float | None
    p99: float | None


@dataclass(frozen=True)
class StatsSeries:
    """The buckets of one group (``group`` is None when the series is not grouped)."""

    group: str | None
    points: list[StatsPoint]


@dataclass(frozen=True)
class Stats:
    """Time series per group; ``source`` says whether rollups or raw lines answered."""

    step: int
    by: str | None
    source: str
    series: list[StatsSeries] = field(default_factory=list)


@dataclass(frozen=True)
class TopValue:
    """A value of a field and how many matching lines carry it."""

    value: str
    count: int


@dataclass(frozen=True)
class CreatedKey:
    """A new ingest key; ``key`` is shown this once and stored only as its digest."""

    id: str
    name: str
    key: str
