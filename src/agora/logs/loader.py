"""The loader behind ``agora logs worker``: ingest buffer → PostgreSQL, exactly once.

Any number of loaders share the buffer through one consumer group. A loader reads a batch of
entries, and in ONE transaction records their entry ids in ``log_ingest_batches`` (a primary
key: an entry loaded before is skipped), COPYs the rows of the new entries into ``log_lines``
and adds them to the per-minute rollups. Only after the commit does it acknowledge and delete
the entries. A loader killed mid-load leaves its entries pending; another loader claims them
once they have been idle ``AGORA_LOG_WORKER_CLAIM_IDLE`` seconds, and the entry ids make the
second load store nothing twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
import structlog
from prometheus_client import Counter as MetricCounter
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from agora.core.db import Database
from agora.logs import partitions
from agora.logs.buffer import (
    IDS_FIELD,
    INGEST_STREAM,
    LOADER_GROUP,
    ROWS_FIELD,
    TAIL_KEEP_ENTRIES,
    TAIL_STREAM,
)
from agora.logs.models import LINE_ID_SEQUENCE
from agora.logs.parsing import ROW_COLUMNS, is_error
from agora.logs.sketch import bin_key
from agora.settings import Settings

log = structlog.get_logger(__name__)
LINES_LOADED = MetricCounter("agora_logs_lines_loaded_total", "Log lines stored by loaders")
BATCHES_SKIPPED = MetricCounter(
    "agora_logs_batches_redelivered_total", "Buffered batches redelivered after being stored"
)
_COLUMNS = ("id", *ROW_COLUMNS)
_TS, _SERVICE, _LEVEL, _ROUTE, _STATUS, _DURATION, _BYTES = (
    ROW_COLUMNS.index(name)
    for name in ("ts", "service", "level", "route", "status", "duration_ms", "bytes")
)
_UPSERT_ROLLUPS = """
INSERT INTO log_rollups AS r
    (minute, service, route, status_class, count, errors, bytes, timed, sketch)
SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::smallint[],
                     $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::jsonb[])
ON CONFLICT (minute, service, route, status_class) DO UPDATE SET
    count = r.count + excluded.count,
    errors = r.errors + excluded.errors,
    bytes = r.bytes + excluded.bytes,
    timed = r.timed + excluded.timed,
    sketch = (
        SELECT COALESCE(jsonb_object_agg(key, total), '{}'::jsonb)
        FROM (
            SELECT key, sum(value::bigint) AS total
            FROM (SELECT * FROM jsonb_each_text(r.sketch)
                  UNION ALL SELECT * FROM jsonb_each_text(excluded.sketch)) AS bins
            GROUP BY key
        ) AS merged
    )
"""

# One array, not a row per id: decoding thousands of one-column rows costs more than the COPY.
_NEXT_IDS = "SELECT array_agg(nextval($1::regclass)) FROM generate_series(1, $2)"
_DAY_ZERO = dt.date(1970, 1, 1)

Entry = tuple[bytes, dict[bytes, bytes]]


def consumer_name() -> str:
    """A name unique to this loader process, for the consumer group."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


async def ensure_group(redis: Redis) -> None:
    """Create the loaders' consumer group (and the stream) unless they exist."""
    try:
        await redis.xgroup_create(INGEST_STREAM, LOADER_GROUP, id="0", mkstream=True)
    except ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


@dataclass
class Loader:
    """One loader: reads batches from the buffer and stores them exactly once."""

    database: Database
    redis: Redis
    batch: int = 50
    claim_idle_s: float = 30.0
    name: str = field(default_factory=consumer_name)
    _next_claim: float = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Load until ``stop`` is set (a batch in progress is finished first)."""
        await ensure_group(self.redis)
        while not stop.is_set():
            try:
                await self.run_once()
            except ResponseError as error:
                if "NOGROUP" not in str(error):
                    raise
                await ensure_group(self.redis)  # the stream was deleted: start it again
            except (RedisError, OSError, SQLAlchemyError) as error:
                # A service is unreachable: the batch stays pending and is read again later.
                log.warning("log_loader_retrying", error=str(error))
                await asyncio.sleep(1.0)

    async def run_once(self, block_ms: int = 1000) -> int:
        """Load one batch (claimed from a dead loader, or new); returns the lines stored."""
        entries = await self._claim_stale()
        if not entries:
            answer: Any = await self.redis.xreadgroup(
                LOADER_GROUP, self.name, {INGEST_STREAM: ">"}, count=self.batch, block=block_ms
            )
            entries = cast(list[Entry], answer[0][1]) if answer else []
        if not entries:
            return 0
        stored = await load(self.database, entries)
        entry_ids = [entry_id for entry_id, _ in entries]
        async with self.redis.pipeline(transaction=False) as pipeline:
            pipeline.xack(INGEST_STREAM, LOADER_GROUP, *entry_ids)
            pipeline.xdel(INGEST_STREAM, *entry_ids)
            for batch in stored:
                pipeline.xadd(
                    TAIL_STREAM,
                    {IDS_FIELD: orjson.dumps(batch.ids), ROWS_FIELD: batch.rows_json},
                    maxlen=TAIL_KEEP_ENTRIES,
                    approximate=True,
                )
            await pipeline.execute()
        return sum(len(batch.ids) for batch in stored)

    async def _claim_stale(self) -> list[Entry]:
        """Entries another loader read but never acknowledged (it died), once idle enough."""
        now = asyncio.get_running_loop().time()
        if now < self._next_claim:
            return []
        self._next_claim = now + self.claim_idle_s / 2
        answer = await self.redis.xautoclaim(
            INGEST_STREAM,
            LOADER_GROUP,
            self.name,
            min_idle_time=int(self.claim_idle_s * 1000),
            start_id="0-0",
            count=self.batch,
        )
        claimed: list[Entry] = [entry for entry in answer[1] if entry[1]]
        if claimed:
            self._next_claim = now  # there may be more: look again at once
            log.info("log_loader_claimed", entries=len(claimed), consumer=self.name)
        return claimed


@dataclass(frozen=True)
class Stored:
    """The lines one buffer entry gave: their new ids, and the entry's rows as buffered (JSON),
    passed on to live tails as they are rather than encoded again."""

    ids: list[int]
    rows_json: bytes


async def load(database: Database, entries: Sequence[Entry]) -> list[Stored]:
    """Store the rows of the entries not stored before, in one transaction."""
    async with database.engine.begin() as connection:
        fresh = await _claim_entry_ids(connection, [entry_id.decode() for entry_id, _ in entries])
        skipped = len(entries) - len(fresh)
        if skipped:
            BATCHES_SKIPPED.inc(skipped)
        buffered = [fields[ROWS_FIELD] for entry_id, fields in entries
                    if entry_id.decode() in fresh]  # fmt: skip
        per_entry = [orjson.loads(rows_json) for rows_json in buffered]
        rows: list[list[Any]] = [row for entry_rows in per_entry for row in entry_rows]
        if not rows:
            return []
        await _ensure_partitions(connection, rows)
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        ids: list[int] = await driver.fetchval(_NEXT_IDS, LINE_ID_SEQUENCE, len(rows))
        await driver.copy_records_to_table(
            "log_lines", records=map(_record, ids, rows), columns=_COLUMNS
        )
        await driver.execute(_UPSERT_ROLLUPS, *_rollup_columns(rows))
    LINES_LOADED.inc(len(rows))
    stored, start = [], 0
    for rows_json, entry_rows in zip(buffered, per_entry, strict=True):
        stored.append(Stored(ids[start : start + len(entry_rows)], rows_json))
        start += len(entry_rows)
    return stored


async def _claim_entry_ids(connection: AsyncConnection, entry_ids: list[str]) -> set[str]:
    result = await connection.execute(
        text(
            "INSERT INTO log_ingest_batches (entry_id) SELECT unnest(CAST(:ids AS text[])) "
            "ON CONFLICT DO NOTHING RETURNING entry_id"
        ),
        {"ids": entry_ids},
    )
    return set(result.scalars())


async def _ensure_partitions(connection: AsyncConnection, rows: list[list[Any]]) -> None:
    days = {_DAY_ZERO + dt.timedelta(days=day) for day in {int(row[_TS] // 86400) for row in rows}}
    if days - await partitions.existing_days(connection):
        await partitions.ensure_days(connection, days)


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def _record(line_id: int, row: list[Any]) -> tuple[Any, ...]:
    """A row as COPY takes it: led by its id, then its time (which leads every row)."""
    return (line_id, _utc(row[_TS]), *row[_TS + 1 :])


@dataclass
class _Rollup:
    count: int = 0
    errors: int = 0
    bytes: int = 0
    timed: int = 0
    sketch: Counter[str] = field(default_factory=Counter)


def _rollup_columns(rows: list[list[Any]]) -> list[list[Any]]:
    """The per-minute aggregates of ``rows``, as the upsert's column arrays, in key order (two
    loaders lock shared rollup rows in the same order, so they never deadlock)."""
    groups: dict[tuple[float, str, str, int], _Rollup] = {}
    for row in rows:
        status = row[_STATUS]
        key = (
            row[_TS] // 60 * 60,
            row[_SERVICE] or "",
            row[_ROUTE] or "",
            status // 100 if status else 0,
        )
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Rollup()
        group.count += 1
        group.errors += is_error(row[_LEVEL], status)
        group.bytes += row[_BYTES] or 0
        if row[_DURATION] is not None:
            group.timed += 1
            group.sketch[bin_key(row[_DURATION])] += 1
    columns: list[list[Any]] = [[] for _ in range(9)]
    for key in sorted(groups):
        group = groups[key]
        values = (
            _utc(key[0]), key[1], key[2], key[3], group.count, group.errors, group.bytes,
            group.timed, orjson.dumps(group.sketch).decode(),
        )  # fmt: skip
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    return columns


async def serve(database_url: str, redis_url: str, settings: Settings, stop: asyncio.Event) -> None:
    """Run one loader on the given services until ``stop`` is set (``agora logs worker``)."""
    database = Database(database_url, pool_size=4)
    redis = Redis.from_url(redis_url)
    loader = Loader(
        database,
        redis,
        batch=settings.log_worker_batch,
        claim_idle_s=settings.log_worker_claim_idle,
    )
    log.info("log_loader_started", consumer=loader.name)
    try:
        await loader.run(stop)
    finally:
        await redis.aclose()
        await database.dispose()
