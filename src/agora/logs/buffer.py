"""The Redis streams of the pipeline: the ingest buffer and the feed of stored lines.

Ingest appends one stream entry per accepted batch of rows (``XADD``); loaders read entries
through a consumer group, and acknowledge and delete each entry only once its rows are
committed, so the stream's length is the backlog. When the backlog reaches
``AGORA_LOG_BUFFER_MAX_BATCHES``, ingest answers 503 with ``Retry-After`` rather than lose lines.

After a commit, the loader appends each stored entry to the tail stream, which live tails read:
the new line ids and the rows exactly as buffered. The tail stream keeps the last
``TAIL_KEEP_ENTRIES`` entries (an entry holds at most ``ENTRY_MAX_ROWS`` lines, so the stream holds
at most 2.5 M lines, and a few hundred MB at worst); a tail resuming from a position trimmed
away is told so.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from redis.asyncio import Redis

from agora.core.errors import ServiceUnavailable
from agora.logs.parsing import Row

INGEST_STREAM = "agora:logs:ingest"
TAIL_STREAM = "agora:logs:tail"
LOADER_GROUP = "loaders"
ROWS_FIELD = b"r"
IDS_FIELD = b"i"
ENTRY_MAX_ROWS = 5000
TAIL_KEEP_ENTRIES = 500
RETRY_AFTER_S = 2


class BufferFull(ServiceUnavailable):
    """The ingest buffer holds as much as it may; the sender should retry after a pause."""

    code = "log_buffer_full"
    title = "Log buffer full"


async def enqueue(redis: Redis, rows: Sequence[Row], *, max_batches: int) -> None:
    """Append ``rows`` to the ingest buffer, or ``BufferFull`` (503) when it is full."""
    if not rows:
        return
    if await redis.xlen(INGEST_STREAM) >= max_batches:
        raise BufferFull(
            "The log buffer is full; retry shortly.",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    async with redis.pipeline(transaction=False) as pipeline:
        for start in range(0, len(rows), ENTRY_MAX_ROWS):
            chunk = rows[start : start + ENTRY_MAX_ROWS]
            pipeline.xadd(INGEST_STREAM, {ROWS_FIELD: orjson.dumps(chunk)})
        await pipeline.execute()


async def backlog(redis: Redis) -> int:
    """How many batches wait in the buffer (read or not, not yet stored)."""
    return int(await redis.xlen(INGEST_STREAM))
