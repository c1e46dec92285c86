"""The pipeline: exactly once under a SIGKILLed loader, redelivery after commit, retention."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time

import orjson
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select, text

from agora.core.db import Database
from agora.logs import partitions
from agora.logs.buffer import INGEST_STREAM, LOADER_GROUP, backlog
from agora.logs.loader import Loader, ensure_group, load
from agora.logs.models import log_lines, log_rollups
from agora.logs.parsing import Defaults, parse_body
from agora.logs.service import keep_storage
from agora.settings import Settings
from tests.logs.support import ndjson
from tests.support import ROOT, wait_for

ENTRIES = 120
LINES_PER_ENTRY = 500


async def buffer_numbered_lines(redis: Redis, entries: int, per_entry: int) -> int:
    """Buffer ``entries`` batches of lines whose messages are unique numbers."""
    now = time.time()
    defaults = Defaults(now=now, oldest=now - 86400, newest=now + 86400)
    async with redis.pipeline(transaction=False) as pipeline:
        for entry in range(entries):
            documents = [{"message": f"line {entry}-{n}"} for n in range(per_entry)]
            rows = parse_body(ndjson(*documents), "ndjson", defaults).rows
            pipeline.xadd(INGEST_STREAM, {b"r": orjson.dumps(rows)})
        await pipeline.execute()
    return entries * per_entry


async def counts(database: Database) -> tuple[int, int]:
    async with database.engine.connect() as connection:
        total, distinct = (
            await connection.execute(
                select(func.count(), func.count(func.distinct(log_lines.c.message)))
            )
        ).one()
    return int(total), int(distinct)


def start_loader(env: dict[str, str], batch: int = 10) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "agora", "logs", "worker"],
        env={**env, "AGORA_LOG_WORKER_BATCH": str(batch), "AGORA_LOG_WORKER_CLAIM_IDLE": "1"},
        cwd=ROOT,
    )


@pytest.mark.worker
async def test_every_line_is_stored_exactly_once_when_a_loader_is_killed_mid_load(
    service_env: dict[str, str], database: Database, redis: Redis
) -> None:
    await ensure_group(redis)
    total = await buffer_numbered_lines(redis, ENTRIES, LINES_PER_ENTRY)
    first = start_loader(service_env, batch=1)
    try:
        await wait_for(lambda: _stored_some(database), timeout=60, interval=0.01)
        async with database.engine.connect() as blocker, blocker.begin():
            # The loader's next transaction COPYs its lines, then waits on the rollups: killed
            # there, it dies holding an entry it read and lines it wrote but never committed.
            await blocker.execute(text("LOCK TABLE log_rollups IN SHARE MODE"))
            await wait_for(lambda: _waiting_on_rollups(database), timeout=60, interval=0.01)
            os.kill(first.pid, signal.SIGKILL)
            first.wait()
        pending = await redis.xpending(INGEST_STREAM, LOADER_GROUP)
        assert pending["pending"] > 0
        stored_before = (await counts(database))[0]
        assert 0 < stored_before < total
        second = start_loader(service_env)
        try:
            await wait_for(lambda: _all_loaded(redis), timeout=120, interval=0.2)
        finally:
            second.terminate()
            second.wait(timeout=20)
    finally:
        if first.poll() is None:
            first.kill()
    assert await counts(database) == (total, total)


async def _stored_some(database: Database) -> bool:
    return (await counts(database))[0] > 0


async def _waiting_on_rollups(database: Database) -> bool:
    async with database.engine.connect() as connection:
        waiting = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_locks "
                "WHERE relation = 'log_rollups'::regclass AND NOT granted"
            )
        )
    return bool(waiting)


async def _all_loaded(redis: Redis) -> bool:
    return await backlog(redis) == 0


async def test_a_batch_redelivered_after_its_commit_is_not_stored_twice(
    database: Database, redis: Redis
) -> None:
    await ensure_group(redis)
    total = await buffer_numbered_lines(redis, 3, 10)
    answer = await redis.xreadgroup(LOADER_GROUP, "dies-after-commit", {INGEST_STREAM: ">"})
    entries = answer[0][1]
    stored = await load(database, entries)  # committed, never acknowledged
    assert sum(len(batch.ids) for batch in stored) == total
    survivor = Loader(database, redis, claim_idle_s=0.0)
    assert await survivor.run_once(block_ms=10) == 0  # claimed, recognised, acknowledged
    assert await backlog(redis) == 0
    assert await counts(database) == (total, total)


async def test_retention_drops_old_partitions_and_rollups(
    database: Database, settings: Settings
) -> None:
    today = dt.datetime.now(dt.UTC).date()
    old_day = today - dt.timedelta(days=settings.log_retention_days + 1)
    kept_day = today - dt.timedelta(days=settings.log_retention_days)
    async with database.engine.begin() as connection:
        await partitions.ensure_days(connection, [old_day, kept_day])
        for day in (old_day, kept_day):
            await connection.execute(
                log_lines.insert().values(
                    ts=dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC), message=str(day)
                )
            )
        await connection.execute(
            log_rollups.insert(),
            [
                {"minute": dt.datetime.combine(today, dt.time(), tzinfo=dt.UTC)
                 - dt.timedelta(days=days), "service": "a", "route": "/", "status_class": 2,
                 "count": 1, "errors": 0, "bytes": 0, "timed": 0, "sketch": {}}
                for days in (settings.log_rollup_retention_days + 1, 1)
            ],
        )  # fmt: skip
    upkeep = await keep_storage(database, settings)
    assert old_day in upkeep.dropped
    assert kept_day not in upkeep.dropped
    assert upkeep.rollups_purged == 1
    assert today + dt.timedelta(days=settings.log_partitions_ahead_days) in await _days(database)
    async with database.engine.connect() as connection:
        remaining = (await connection.execute(select(log_lines.c.message))).scalars().all()
        tables = await connection.scalar(
            text("SELECT count(*) FROM pg_tables WHERE schemaname = 'logs' AND tablename = :t"),
            {"t": partitions.partition_name(old_day)},
        )
    assert remaining == [str(kept_day)]
    assert tables == 0


async def _days(database: Database) -> set[dt.date]:
    async with database.engine.connect() as connection:
        return await partitions.existing_days(connection)
