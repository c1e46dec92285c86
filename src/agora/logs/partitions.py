"""Day partitions of ``log_lines``: made ahead of time, dropped after the retention period.

Partitions live in the ``logs`` schema as ``logs.log_lines_YYYYMMDD`` and cover one UTC day
each. Beat makes the coming days' ones and drops those wholly older than
``AGORA_LOG_RETENTION_DAYS`` (dropping a partition frees its space at once, where a ``DELETE``
would leave dead rows to vacuum). A loader also makes the partition of any day it is about to
write, so a line never fails for want of one; an advisory lock keeps two makers apart.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from agora.logs.models import PARTITION_SCHEMA

_LOCK_KEY = 0x6C6F6773  # "logs": serialises partition DDL across processes
_NAME = re.compile(r"^log_lines_(\d{8})$")


def partition_name(day: dt.date) -> str:
    """The unqualified name of ``day``'s partition."""
    return f"log_lines_{day:%Y%m%d}"


async def existing_days(connection: AsyncConnection) -> set[dt.date]:
    """The days that have a partition."""
    result = await connection.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'log_lines'::regclass"
        )
    )
    days = set()
    for (name,) in result:
        match = _NAME.match(name)
        if match:
            days.add(dt.datetime.strptime(match[1], "%Y%m%d").replace(tzinfo=dt.UTC).date())
    return days


async def ensure_days(connection: AsyncConnection, days: Iterable[dt.date]) -> list[dt.date]:
    """Make the partitions of ``days`` that do not exist; returns the days made."""
    wanted = set(days)
    if not wanted:
        return []
    await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    missing = sorted(wanted - await existing_days(connection))
    for day in missing:
        start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        end = start + dt.timedelta(days=1)
        # DDL takes no bind parameters; the name and bounds come from a date, never from input.
        await connection.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {PARTITION_SCHEMA}.{partition_name(day)} "
                f"PARTITION OF log_lines FOR VALUES FROM ('{start.isoformat()}') "
                f"TO ('{end.isoformat()}')"
            )
        )
    return missing


async def drop_before(connection: AsyncConnection, oldest_kept: dt.date) -> list[dt.date]:
    """Drop the partitions of days before ``oldest_kept``; returns the days dropped."""
    await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    dropped = sorted(day for day in await existing_days(connection) if day < oldest_kept)
    for day in dropped:
        await connection.execute(
            text(f"DROP TABLE IF EXISTS {PARTITION_SCHEMA}.{partition_name(day)}")
        )
    return dropped


def days_between(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every day from ``first`` to ``last``, both included."""
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
