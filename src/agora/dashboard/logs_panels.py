"""The log platform's side of a snapshot: requests/s, 5xx rate and latency percentiles (headline
and per bucket), the per-route table, status codes, top paths and top client addresses.

Everything is read through the log platform's own service functions, over its per-minute
rollups where they can answer (every range here is whole minutes with whole-minute steps). Only
lines with an HTTP status are requests; the platform's other lines (business events, app logs)
are kept out of these figures. The headline covers the previous whole minute plus the current
one, so it moves within a second of a load and never jumps to zero when a minute starts.

The ranked lists (status codes, paths, addresses) are counted from the lines themselves, which
costs more over a long range: they are recounted every ``window / 360`` seconds (2.5 s over
15 minutes, at most a minute over 24 hours and 7 days), the rest on every snapshot.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.dependencies import AppServices
from agora.dashboard.ranges import TimeRange
from agora.dashboard.snapshot import Section
from agora.logs import service as logs
from agora.logs.results import Stats, StatsPoint

NO_STATUS = "0"
SERVER_ERROR = "5"
MAX_ROUTES = 15
TOP_LIMIT = 10
MAX_RANKING_AGE_S = 60.0
REQUESTS = "status:[100 TO 599]"
RANKED_FIELDS = (("status_codes", "status"), ("top_paths", "path"), ("top_ips", "ip"))


async def logs_section(
    services: AppServices, now: dt.datetime, time_range: TimeRange
) -> dict[str, Any]:
    """The ``logs`` part of a snapshot."""
    async with services.database.sessionmaker() as session:
        return {"logs": await _figures(session, now, time_range)}


async def _figures(
    session: AsyncSession, now: dt.datetime, time_range: TimeRange
) -> dict[str, Any]:
    minute = now.replace(second=0, microsecond=0)
    recent_start, recent_end = minute - dt.timedelta(minutes=1), minute + dt.timedelta(minutes=1)
    recent_classes = await logs.stats(
        session, start=recent_start, end=recent_end, step=120, by="status_class"
    )
    recent_latency = await logs.stats(session, start=recent_start, end=recent_end, step=120)
    requests, server_errors = _requests(recent_classes)
    elapsed = (now - recent_start).total_seconds()
    latency = recent_latency.series[0].points[0]

    start = time_range.start(now)
    end = start + dt.timedelta(seconds=time_range.window_s)
    step = time_range.step_s
    classes = await logs.stats(session, start=start, end=end, step=step, by="status_class")
    overall = await logs.stats(session, start=start, end=end, step=step)
    routes = await logs.stats(session, start=start, end=end, step=time_range.window_s, by="route")
    per_bucket = _requests_per_bucket(classes, time_range.buckets)
    points = overall.series[0].points
    return {
        "requests_per_second": round(sum(requests) / elapsed, 2),
        "error_rate": sum(server_errors) / sum(requests) if sum(requests) else 0.0,
        "p50": latency.p50,
        "p95": latency.p95,
        "p99": latency.p99,
        "series": {
            "requests": [total for total, _ in per_bucket],
            "error_rate": [
                round(errors / total, 4) if total else 0.0 for total, errors in per_bucket
            ],
            "p50": [point.p50 for point in points],
            "p95": [point.p95 for point in points],
            "p99": [point.p99 for point in points],
        },
        "routes": _routes(routes),
    }


def _requests(stats: Stats) -> tuple[list[int], list[int]]:
    """Request counts and 5xx counts of a one-bucket series per status class."""
    requests = [s.points[0].count for s in stats.series if s.group not in (None, NO_STATUS)]
    errors = [s.points[0].count for s in stats.series if s.group == SERVER_ERROR]
    return requests, errors


def _requests_per_bucket(stats: Stats, buckets: int) -> list[tuple[int, int]]:
    """(requests, 5xx) per bucket, summed over the status classes of real requests."""
    totals = [[0, 0] for _ in range(buckets)]
    for series in stats.series:
        if series.group in (None, NO_STATUS):
            continue
        for index, point in enumerate(series.points[:buckets]):
            totals[index][0] += point.count
            if series.group == SERVER_ERROR:
                totals[index][1] += point.count
    return [(total, errors) for total, errors in totals]


def _routes(stats: Stats) -> list[dict[str, Any]]:
    rows = [(series.group, series.points[0]) for series in stats.series if series.group]
    rows.sort(key=lambda row: -row[1].count)
    return [_route(route, point) for route, point in rows[:MAX_ROUTES] if point.count]


def _route(route: str, point: StatsPoint) -> dict[str, Any]:
    return {
        "route": route,
        "count": point.count,
        "error_rate": round(point.error_rate, 4),
        "p50": point.p50,
        "p95": point.p95,
        "p99": point.p99,
    }


def rankings_max_age(time_range: TimeRange) -> float:
    """Ranked lists are counted from raw lines: at most every ``window / 360`` seconds."""
    return min(MAX_RANKING_AGE_S, time_range.window_s / 360)


async def rankings_section(
    services: AppServices, now: dt.datetime, time_range: TimeRange
) -> dict[str, Any]:
    """The ``rankings`` part: status codes, top paths and top client addresses of the range."""
    start = time_range.start(now)
    end = start + dt.timedelta(seconds=time_range.window_s)
    async with services.database.sessionmaker() as session:
        return {
            "rankings": {
                name: [
                    {"value": entry.value, "count": entry.count}
                    for entry in await logs.top(
                        session, field, REQUESTS, start=start, end=end, limit=TOP_LIMIT
                    )
                ]
                for name, field in RANKED_FIELDS
            }
        }


SECTIONS = (Section(logs_section), Section(rankings_section, rankings_max_age))
