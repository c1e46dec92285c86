"""Agora's own requests and business events, as log lines with ``service=agora``.

``RequestLogSink`` is the API's request sink (``core.observability.RequestSink``): it appends a
record to a bounded in-memory queue and returns; a background task moves the queue to the
ingest buffer every ``AGORA_LOG_SELF_FLUSH_INTERVAL`` seconds in one Redis call. A request
never waits for analytics: when the queue is full, or the buffer refuses a flush, lines are
dropped and counted in ``agora_logs_self_dropped_total``.

``record_events`` turns relayed outbox events (orders placed, paid, cancelled, refunded, with
their amounts; flash-sale tickets) into lines, as the outbox relay hands them over.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import orjson
import structlog
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from agora.core.errors import ServiceUnavailable
from agora.core.observability import RequestRecord
from agora.core.outbox import RelayListener
from agora.logs.buffer import enqueue
from agora.logs.parsing import Row
from agora.settings import Settings

SERVICE = "agora"
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
DROPPED = Counter(
    "agora_logs_self_dropped_total",
    "Agora's own request and event lines dropped under overload",
    ["kind"],
)
log = structlog.get_logger(__name__)


def request_row(record: RequestRecord) -> Row:
    """The log row of one of Agora's requests."""
    level = "error" if record.status >= 500 else "warn" if record.status >= 400 else "info"
    attrs = {"user_id": record.user_id} if record.user_id else None
    return (
        record.at, SERVICE, None, level, f"{record.method} {record.path} {record.status}",
        record.method, record.path, record.route, record.status, round(record.duration_ms, 3),
        record.response_bytes, record.client, None, record.request_id, None,
        orjson.dumps(attrs).decode() if attrs else "{}",
    )  # fmt: skip


class RequestLogSink:
    """Queues request records in memory and flushes them to the ingest buffer in batches."""

    def __init__(self, max_queued: int, flush_interval: float) -> None:
        self.queue: deque[RequestRecord] = deque()
        self.max_queued = max_queued
        self.flush_interval = flush_interval
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def __call__(self, record: RequestRecord) -> None:
        """Take a request's record without waiting (dropped and counted if the queue is full)."""
        if record.route in QUIET_ROUTES:
            return
        if len(self.queue) >= self.max_queued:
            DROPPED.labels("request").inc()
            return
        self.queue.append(record)

    def start(self, redis: Redis, settings: Settings) -> None:
        """Start flushing to ``redis`` (the app's lifespan calls this)."""
        self._stopping = asyncio.Event()
        self._task = asyncio.create_task(self._flush_until_stopped(redis, settings))

    async def stop(self) -> None:
        """Stop flushing, after one last flush (never cancelled mid-call to Redis)."""
        if self._task is not None:
            self._stopping.set()
            await self._task

    async def _flush_until_stopped(self, redis: Redis, settings: Settings) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.flush_interval)
            await self.flush(redis, settings)

    async def flush(self, redis: Redis, settings: Settings) -> int:
        """Move what is queued to the ingest buffer; returns how many lines were moved."""
        if not self.queue:
            return 0
        records = [self.queue.popleft() for _ in range(len(self.queue))]
        rows = [request_row(record) for record in records]
        try:
            await enqueue(redis, rows, max_batches=settings.log_buffer_max_batches)
        except (ServiceUnavailable, RedisError, OSError) as error:
            DROPPED.labels("request").inc(len(rows))
            log.warning("self_log_dropped", lines=len(rows), error=str(error))
            return 0
        return len(rows)


def event_row(event: dict[str, Any]) -> Row:
    """The log row of a relayed outbox event ``{id, topic, data, user_id, created_at}``."""
    data = event.get("data") or {}
    attrs: dict[str, Any] = {"event_id": event["id"], **data}
    total = data.get("total")
    if isinstance(total, dict):
        attrs["amount"], attrs["currency"] = total.get("amount"), total.get("currency")
        del attrs["total"]
    if event.get("user_id"):
        attrs["user_id"] = str(event["user_id"])
    topic = str(event["topic"])
    level = "warn" if topic.endswith(("cancelled", "refunded", "rejected")) else "info"
    return (
        _epoch(event.get("created_at")), SERVICE, None, level, topic, None, None, None, None,
        None, None, None, None, None, None, orjson.dumps(attrs, default=str).decode(),
    )  # fmt: skip


def _epoch(value: Any) -> float:
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    return time.time()


async def record_events(redis: Redis, events: Sequence[dict[str, Any]], max_batches: int) -> int:
    """Buffer the lines of relayed events; under overload they are dropped and counted (the
    relay must go on: the events themselves are not lost, only their log lines)."""
    if not events:
        return 0
    rows = [event_row(event) for event in events]
    try:
        await enqueue(redis, rows, max_batches=max_batches)
    except (ServiceUnavailable, RedisError, OSError):
        DROPPED.labels("event").inc(len(rows))
        return 0
    return len(rows)


@functools.cache
def event_listener(max_batches: int) -> RelayListener:
    """The outbox relay listener that logs business events (registered by the worker); one per
    limit, so registering it twice in a process is harmless."""

    async def listen(redis: Redis, events: list[dict[str, Any]]) -> int:
        return await record_events(redis, events, max_batches)

    return listen
