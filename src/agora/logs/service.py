"""The log platform's use cases: ingest, keys, search, stats, top, and storage upkeep.

These functions are the public face of the engine: the HTTP API calls them, and so may any other
reader of the logs (the live dashboard). They take a session or Redis client, never a request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import secrets
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.db import Database, utcnow
from agora.core.errors import NotFound, ValidationFailed
from agora.core.pagination import decode_cursor, encode_cursor
from agora.logs import partitions, repository, sketch
from agora.logs.buffer import enqueue
from agora.logs.models import log_ingest_batches, log_rollups
from agora.logs.parsing import Defaults, Format, parse_body
from agora.logs.query import ATTRS_PREFIX, NUMBER_FIELDS, TEXT_FIELDS, BoolOp, Node, Term, parse
from agora.logs.query import to_sql as condition_of
from agora.logs.results import (
    CreatedKey,
    IngestResult,
    LogLine,
    RejectedLine,
    SearchPage,
    Stats,
    StatsPoint,
    StatsSeries,
    TopValue,
)
from agora.settings import Settings

KEY_PREFIX = "agl_"
SEARCH_ORDER = "ts-desc"
DEFAULT_SEARCH_SPAN = dt.timedelta(days=1)
DEFAULT_STATS_SPAN = dt.timedelta(hours=1)
MAX_SEARCH_LIMIT = 1000
MAX_BUCKETS = 2000
FUTURE_MARGIN = dt.timedelta(days=1)
BATCH_ID_RETENTION = dt.timedelta(days=2)
GROUP_FIELDS = frozenset({"service", "route", "status_class", "method", "host", "level"})
ROLLUP_GROUPS = frozenset({"service", "route", "status_class"})
ROLLUP_FILTERS = frozenset({"service", "route"})
TOP_FIELDS = (TEXT_FIELDS | NUMBER_FIELDS) - {"message", "id"}
_QS = repository.QUANTILES


# --- ingest ----------------------------------------------------------------------------------


async def ingest(
    redis: Redis,
    body: bytes,
    fmt: Format,
    settings: Settings,
    *,
    service: str | None = None,
    host: str | None = None,
    spend: Callable[[int], Awaitable[None]] | None = None,
) -> IngestResult:
    """Parse a body of lines and buffer the good ones; bad lines are listed with reasons.

    ``spend`` is charged the number of good lines before they are buffered (a rate limit that
    raises refuses the body). ``BufferFull`` (503, ``Retry-After``) when the buffer is full:
    nothing of the body is kept then."""
    now = utcnow()
    defaults = Defaults(
        now=now.timestamp(),
        oldest=(now - dt.timedelta(days=settings.log_retention_days)).timestamp(),
        newest=(now + FUTURE_MARGIN).timestamp(),
        service=service,
        host=host,
    )
    parsed = parse_body(body, fmt, defaults)
    if spend is not None and parsed.rows:
        await spend(len(parsed.rows))
    await enqueue(redis, parsed.rows, max_batches=settings.log_buffer_max_batches)
    return IngestResult(
        accepted=len(parsed.rows),
        rejected=[RejectedLine(line=line, reason=reason) for line, reason in parsed.rejected],
    )


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_key(session: AsyncSession, name: str) -> CreatedKey:
    """A new ingest key; the key itself is returned this once, only its digest is stored."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    stored = await repository.add_key(session, name, _digest(key))
    return CreatedKey(id=str(stored.id), name=name, key=key)


async def delete_key(session: AsyncSession, key_id: uuid.UUID) -> None:
    """Revoke an ingest key at once; 404 when there is none."""
    if not await repository.delete_key(session, key_id):
        raise NotFound("No such ingest key.", code="ingest_key_not_found")


def looks_like_key(token: str) -> bool:
    """Whether a bearer token is an ingest key (rather than an access token)."""
    return token.startswith(KEY_PREFIX)


async def is_valid_key(session: AsyncSession, key: str) -> bool:
    """Whether ``key`` is a live ingest key."""
    return await repository.key_exists(session, _digest(key))


def key_identity(key: str) -> str:
    """A stable, non-secret name of a key for per-key rate limits."""
    return _digest(key)[:32]


# --- time ranges -----------------------------------------------------------------------------


def time_range(
    start: dt.datetime | None, end: dt.datetime | None, default_span: dt.timedelta
) -> tuple[dt.datetime, dt.datetime]:
    """``[start, end)`` with defaults (the last ``default_span``, ends on a whole minute);
    422 when it is empty or naive."""
    if end is None:
        now = utcnow()
        end = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    if start is None:
        start = end - default_span
    if start.tzinfo is None or end.tzinfo is None:
        raise ValidationFailed("from and to need a time zone.", code="naive_time")
    if start >= end:
        raise ValidationFailed("from must be before to.", code="empty_range")
    return start, end


# --- search ----------------------------------------------------------------------------------


async def search(
    session: AsyncSession,
    q: str = "",
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> SearchPage:
    """Lines matching ``q`` in ``[start, end)`` (default: the last day), newest first."""
    start, end = time_range(start, end, DEFAULT_SEARCH_SPAN)
    limit = max(1, min(limit, MAX_SEARCH_LIMIT))
    after = decode_cursor(cursor, SEARCH_ORDER, _cursor_key) if cursor else None
    rows = await repository.search(session, condition_of(parse(q)), start, end, limit + 1, after)
    items = [LogLine(**row._mapping) for row in rows[:limit]]
    next_cursor = (
        encode_cursor(SEARCH_ORDER, items[-1].ts.isoformat(), items[-1].id)
        if len(rows) > limit
        else None
    )
    return SearchPage(items=items, next_cursor=next_cursor)


def _cursor_key(ts: str, line_id: int) -> tuple[dt.datetime, int]:
    if not isinstance(line_id, int):
        raise TypeError("line id")
    return dt.datetime.fromisoformat(ts), line_id


# --- stats -----------------------------------------------------------------------------------


async def stats(
    session: AsyncSession,
    q: str = "",
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    step: int = 60,
    by: str | None = None,
) -> Stats:
    """Per-bucket count, errors, error rate and p50/p95/p99 (ms), one series per ``by`` group.

    Served from the per-minute rollups when they can answer exactly that (the query filters only
    on ``service``/``route``, whole minutes, a step of whole minutes, a rollup dimension as
    ``by``), otherwise from the lines themselves."""
    start, end = time_range(start, end, DEFAULT_STATS_SPAN)
    if step < 1:
        raise ValidationFailed("step must be at least 1 second.", code="invalid_step")
    if math.ceil((end - start).total_seconds() / step) > MAX_BUCKETS:
        raise ValidationFailed(
            f"At most {MAX_BUCKETS} buckets: use a larger step.", code="too_many_buckets"
        )
    if by is not None and by not in GROUP_FIELDS:
        raise ValidationFailed(
            f"by must be one of {', '.join(sorted(GROUP_FIELDS))}.", code="invalid_group"
        )
    node = parse(q)
    filters = _rollup_filters(node)
    if filters is not None and _rollups_can_answer(start, end, step, by):
        counts, bins = await repository.rollup_series(session, filters, start, end, step, by)
        return _series_from_rollups(counts, bins, start, end, step, by)
    rows = await repository.raw_series(session, condition_of(node), start, end, step, by)
    buckets = {
        (_group(row[1]), row[0]): (row[2], row[3], *(row[4] or (None, None, None))) for row in rows
    }
    return _assemble(buckets, start, end, step, by, "lines")


def _rollups_can_answer(start: dt.datetime, end: dt.datetime, step: int, by: str | None) -> bool:
    whole_minutes = all(t.second == 0 and t.microsecond == 0 for t in (start, end))
    return whole_minutes and step % 60 == 0 and (by is None or by in ROLLUP_GROUPS)


def _rollup_filters(node: Node | None) -> dict[str, str] | None:
    """The ``service``/``route`` equalities a query consists of, or None if it says more."""
    if node is None:
        return {}
    terms = node.operands if isinstance(node, BoolOp) and node.op == "and" else (node,)
    filters: dict[str, str] = {}
    for term in terms:
        if not (
            isinstance(term, Term)
            and term.field in ROLLUP_FILTERS
            and term.kind in ("word", "phrase")
            and "*" not in term.value
            and "?" not in term.value
            and filters.setdefault(term.field, term.value) == term.value
        ):
            return None
    return filters


def _series_from_rollups(
    counts: Sequence[Any],
    bins: Sequence[Any],
    start: dt.datetime,
    end: dt.datetime,
    step: int,
    by: str | None,
) -> Stats:
    sketches: dict[tuple[str | None, dt.datetime], Counter[str]] = defaultdict(Counter)
    for bucket, group, key, count in bins:
        sketches[(_group(group), bucket)][key] += int(count)
    buckets = {}
    for bucket, group, count, errors in counts:
        key = (_group(group), bucket)
        buckets[key] = (int(count), int(errors), *sketch.quantiles(sketches[key], _QS))
    return _assemble(buckets, start, end, step, by, "rollups")


def _group(value: Any) -> str | None:
    return None if value is None else str(value)


def _assemble(
    buckets: dict[tuple[str | None, dt.datetime], tuple[Any, ...]],
    start: dt.datetime,
    end: dt.datetime,
    step: int,
    by: str | None,
    source: str,
) -> Stats:
    """Series per group, every bucket of the range present (empty ones with zero counts)."""
    groups = sorted({group for group, _ in buckets}, key=lambda g: (g is None, g or ""))
    if by is None and not groups:
        groups = [None]
    times = [
        start + dt.timedelta(seconds=step * n)
        for n in range(math.ceil((end - start).total_seconds() / step))
    ]
    series = []
    for group in groups:
        points = []
        for moment in times:
            count, errors, p50, p95, p99 = buckets.get((group, moment), (0, 0, None, None, None))
            points.append(
                StatsPoint(
                    ts=moment,
                    count=int(count),
                    errors=int(errors),
                    error_rate=errors / count if count else 0.0,
                    p50=_ms(p50),
                    p95=_ms(p95),
                    p99=_ms(p99),
                )
            )
        series.append(StatsSeries(group=group, points=points))
    return Stats(step=step, by=by, source=source, series=series)


def _ms(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


# --- top -------------------------------------------------------------------------------------


async def top(
    session: AsyncSession,
    field: str,
    q: str = "",
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    limit: int = 10,
) -> list[TopValue]:
    """The ``limit`` most frequent values of ``field`` among lines matching ``q``."""
    if field not in TOP_FIELDS and not (
        field.startswith(ATTRS_PREFIX) and len(field) > len(ATTRS_PREFIX)
    ):
        raise ValidationFailed(f"Cannot rank by {field!r}.", code="invalid_field")
    start, end = time_range(start, end, DEFAULT_STATS_SPAN)
    rows = await repository.top_values(
        session, field, condition_of(parse(q)), start, end, max(1, min(limit, 100))
    )
    return [TopValue(value=str(value), count=int(count)) for value, count in rows]


# --- upkeep ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upkeep:
    """What one round of storage upkeep did."""

    made: list[dt.date]
    dropped: list[dt.date]
    rollups_purged: int


async def keep_storage(
    database: Database, settings: Settings, *, today: dt.date | None = None
) -> Upkeep:
    """Make the coming days' partitions, drop those past retention, purge old rollups and the
    ids of batches loaded long ago (beat runs this)."""
    today = today or utcnow().date()
    oldest_kept = today - dt.timedelta(days=settings.log_retention_days)
    rollup_cutoff = dt.datetime.combine(
        today - dt.timedelta(days=settings.log_rollup_retention_days), dt.time(), tzinfo=dt.UTC
    )
    async with database.engine.begin() as connection:
        made = await partitions.ensure_days(
            connection,
            partitions.days_between(
                today - dt.timedelta(days=1),
                today + dt.timedelta(days=settings.log_partitions_ahead_days),
            ),
        )
        dropped = await partitions.drop_before(connection, oldest_kept)
        purged = await connection.execute(
            delete(log_rollups).where(log_rollups.c.minute < rollup_cutoff)
        )
        await connection.execute(
            delete(log_ingest_batches).where(
                log_ingest_batches.c.loaded_at < utcnow() - BATCH_ID_RETENTION
            )
        )
    return Upkeep(made=made, dropped=dropped, rollups_purged=int(purged.rowcount))
