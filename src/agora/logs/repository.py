"""Every query on the log tables: search pages, time series (raw or rolled up), top values, keys.

Conditions come from ``query.to_sql`` (bound parameters only); time ranges are always bounded,
so PostgreSQL prunes the day partitions outside them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Double,
    Integer,
    and_,
    cast,
    delete,
    func,
    literal,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from agora.logs.models import IngestKey, log_lines, log_rollups
from agora.logs.parsing import ERROR_LEVELS

LINE_COLUMNS = tuple(c for c in log_lines.c if c.name not in ("search", "received_at"))
QUANTILES = (0.5, 0.95, 0.99)
GROUP_COLUMNS = ("service", "route", "status_class", "method", "host", "level")


def is_error_sql() -> ColumnElement[bool]:
    """The SQL twin of ``parsing.is_error``: a 5xx answer or an error-like level."""
    return func.coalesce(
        (log_lines.c.status >= 500) | log_lines.c.level.in_(sorted(ERROR_LEVELS)), False
    )


def _in_range(start: dt.datetime, end: dt.datetime) -> ColumnElement[bool]:
    return and_(log_lines.c.ts >= start, log_lines.c.ts < end)


async def search(
    session: AsyncSession,
    condition: ColumnElement[bool],
    start: dt.datetime,
    end: dt.datetime,
    limit: int,
    after: tuple[dt.datetime, int] | None,
) -> Sequence[Any]:
    """Up to ``limit`` matching lines, newest first, older than ``after`` (ts, id) if given."""
    statement = (
        select(*LINE_COLUMNS)
        .where(_in_range(start, end), condition)
        .order_by(log_lines.c.ts.desc(), log_lines.c.id.desc())
        .limit(limit)
    )
    if after is not None:
        statement = statement.where(tuple_(log_lines.c.ts, log_lines.c.id) < tuple_(*after))
    return (await session.execute(statement)).all()


def _group_expression(by: str | None, *, rollup: bool) -> Any:
    if by is None:
        return literal(None).label("grp")
    table = log_rollups if rollup else log_lines
    if by == "status_class":
        column = log_rollups.c.status_class if rollup else log_lines.c.status / 100
        return cast(column, Integer).label("grp")
    return table.c[by].label("grp")


async def raw_series(
    session: AsyncSession,
    condition: ColumnElement[bool],
    start: dt.datetime,
    end: dt.datetime,
    step: int,
    by: str | None,
) -> Sequence[Any]:
    """Rows ``(bucket, group, count, errors, [p50, p95, p99])`` computed from the lines
    themselves (exact percentiles)."""
    bucket = func.date_bin(literal(dt.timedelta(seconds=step)), log_lines.c.ts, literal(start))
    group = _group_expression(by, rollup=False)
    percentiles = func.percentile_cont(literal(list(QUANTILES), ARRAY(Double))).within_group(
        log_lines.c.duration_ms
    )
    statement = (
        select(
            bucket.label("bucket"),
            group,
            func.count(),
            func.count().filter(is_error_sql()),
            percentiles,
        )
        .where(_in_range(start, end), condition)
        .group_by(bucket, group)
        .order_by(group, bucket)
    )
    return (await session.execute(statement)).all()


def rollup_condition(filters: dict[str, str]) -> ColumnElement[bool]:
    """Equality filters on rollup dimensions (``service``, ``route``)."""
    return and_(True, *(log_rollups.c[name] == value for name, value in filters.items()))


async def rollup_series(
    session: AsyncSession,
    filters: dict[str, str],
    start: dt.datetime,
    end: dt.datetime,
    step: int,
    by: str | None,
) -> tuple[Sequence[Any], Sequence[Any]]:
    """From the per-minute rollups: rows ``(bucket, group, count, errors)`` and the merged
    sketch bins ``(bucket, group, key, count)``."""
    bucket = func.date_bin(
        literal(dt.timedelta(seconds=step)), log_rollups.c.minute, literal(start)
    ).label("bucket")
    group = _group_expression(by, rollup=True)
    where = and_(
        log_rollups.c.minute >= start, log_rollups.c.minute < end, rollup_condition(filters)
    )
    counts = (
        select(bucket, group, func.sum(log_rollups.c.count), func.sum(log_rollups.c.errors))
        .where(where)
        .group_by(bucket, group)
        .order_by(group, bucket)
    )
    bins = func.jsonb_each_text(log_rollups.c.sketch).table_valued("key", "value").alias("bins")
    sketches = (
        select(bucket, group, bins.c.key, func.sum(cast(bins.c.value, Integer)))
        .select_from(log_rollups.join(bins, literal(True)))
        .where(where)
        .group_by(bucket, group, bins.c.key)
    )
    return (await session.execute(counts)).all(), (await session.execute(sketches)).all()


def field_expression(name: str) -> Any:
    """The SQL value of a field: a column, or an ``attrs.`` key as text."""
    if name.startswith("attrs."):
        return log_lines.c.attrs.op("->>")(name[len("attrs.") :])
    return log_lines.c[name]


async def top_values(
    session: AsyncSession,
    field: str,
    condition: ColumnElement[bool],
    start: dt.datetime,
    end: dt.datetime,
    limit: int,
) -> Sequence[Any]:
    """The most frequent non-null values of ``field`` among matching lines, with counts."""
    value = field_expression(field)
    statement = (
        select(value.label("value"), func.count().label("n"))
        .where(_in_range(start, end), condition, value.is_not(None))
        .group_by(value)
        .order_by(func.count().desc(), value)
        .limit(limit)
    )
    return (await session.execute(statement)).all()


async def window_metric(
    session: AsyncSession,
    condition: ColumnElement[bool],
    start: dt.datetime,
    end: dt.datetime,
) -> Any:
    """``(count, errors, p95, p99)`` over matching lines in a window (alert evaluation)."""
    percentiles = func.percentile_cont(literal([0.95, 0.99], ARRAY(Double))).within_group(
        log_lines.c.duration_ms
    )
    statement = select(func.count(), func.count().filter(is_error_sql()), percentiles).where(
        _in_range(start, end), condition
    )
    return (await session.execute(statement)).one()


async def add_key(session: AsyncSession, name: str, digest: str) -> IngestKey:
    """Store a new ingest key by its digest."""
    key = IngestKey(id=uuid.uuid4(), name=name, key_digest=digest)
    session.add(key)
    await session.flush()
    return key


async def delete_key(session: AsyncSession, key_id: uuid.UUID) -> bool:
    """Delete an ingest key; whether it existed."""
    result = await session.execute(delete(IngestKey).where(IngestKey.id == key_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def key_exists(session: AsyncSession, digest: str) -> bool:
    """Whether an ingest key with this digest exists."""
    found = await session.scalar(select(IngestKey.id).where(IngestKey.key_digest == digest))
    return found is not None
