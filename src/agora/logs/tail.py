"""Live tail: the lines matching a query, pushed as they are stored, resumable by position.

Loaders append every committed batch to the tail stream (``buffer.TAIL_STREAM``); a tail reads
that stream from a position, so reconnecting with the last position it was sent
(``after=<id>``) misses nothing the stream still holds. A position that the stream has already
trimmed away is answered with an explicit ``gap`` message, then the tail goes on from the oldest
batch kept. Each connection has a rate cap: lines beyond it are dropped, and a ``dropped`` message
says how many right after the batch they were part of.

Messages (JSON objects):

- ``{"type": "line", "id": "<position>", "line": {...stored fields, "id": <line id>}}``
- ``{"type": "dropped", "count": n, "limit_per_second": r}``
- ``{"type": "gap", "after": "<position asked>", "resumed_at": "<oldest position kept>"}``
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis.asyncio import Redis

from agora.core.errors import ValidationFailed
from agora.logs.buffer import IDS_FIELD, ROWS_FIELD, TAIL_STREAM
from agora.logs.parsing import ROW_COLUMNS
from agora.logs.query import Predicate, matcher, parse

_POSITION = re.compile(r"^(\d+-\d+)\.(\d+)$")
Message = dict[str, Any]


def parse_position(position: str) -> tuple[str, int]:
    """The (stream entry id, row index) of a tail position; 422 if it is not one."""
    match = _POSITION.match(position)
    if match is None:
        raise ValidationFailed(
            "after must be a position a tail sent (like 1764140000000-0.12).",
            code="invalid_position",
        )
    return match[1], int(match[2])


def _entry_key(entry_id: str) -> tuple[int, int]:
    milliseconds, sequence = entry_id.split("-")
    return int(milliseconds), int(sequence)


@dataclass
class _RateCap:
    """A token bucket of ``per_second`` lines, refilled continuously."""

    per_second: int
    tokens: float = 0.0
    refilled_at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = float(self.per_second)

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(
            float(self.per_second), self.tokens + (now - self.refilled_at) * self.per_second
        )
        self.refilled_at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class TailSubscription:
    """The live feed of lines matching a query, from a position (or from now)."""

    def __init__(
        self, redis: Redis, q: str, *, after: str | None, max_lines_per_second: int
    ) -> None:
        """``QuerySyntaxError`` or ``ValidationFailed`` (422) for a bad query or position."""
        self.redis = redis
        self.matches: Predicate = matcher(parse(q))
        self.after = after
        self.start = parse_position(after) if after else None
        self.cap = _RateCap(max_lines_per_second)
        self.dropped = 0

    async def messages(self, block_ms: int = 1000) -> AsyncIterator[Message]:
        """Every message of the tail, forever (the caller stops iterating to end it)."""
        cursor = await self._newest_entry_id()
        if self.start is not None:
            entry_id, index = self.start
            cursor = entry_id
            async for message in self._resume(entry_id, index):
                yield message
        while True:
            answer: Any = await self.redis.xread({TAIL_STREAM: cursor}, count=100, block=block_ms)
            for _, entries in answer or []:
                for raw_id, fields in entries:
                    cursor = raw_id.decode()
                    for message in self._lines(cursor, fields, skip_through=-1):
                        yield message

    async def _newest_entry_id(self) -> str:
        """Where "from now" starts: a fixed id, so that no batch stored between two reads is
        missed (``$`` would mean "after whatever is newest at each read")."""
        newest: Any = await self.redis.xrevrange(TAIL_STREAM, "+", "-", count=1)
        return str(newest[0][0].decode()) if newest else "0-0"

    async def _resume(self, entry_id: str, index: int) -> AsyncIterator[Message]:
        """The rest of the entry ``after`` points into, or a gap if it was trimmed away."""
        found: Any = await self.redis.xrange(TAIL_STREAM, entry_id, entry_id)
        if found:
            for message in self._lines(entry_id, found[0][1], skip_through=index):
                yield message
            return
        oldest: Any = await self.redis.xrange(TAIL_STREAM, "-", "+", count=1)
        if oldest and _entry_key(oldest[0][0].decode()) > _entry_key(entry_id):
            resumed_at = oldest[0][0].decode()
            yield {"type": "gap", "after": self.after, "resumed_at": f"{resumed_at}.0"}
            self.start = None
            for message in self._lines(resumed_at, oldest[0][1], skip_through=-1):
                yield message

    def _lines(self, entry_id: str, fields: dict[bytes, bytes], skip_through: int) -> list[Message]:
        messages: list[Message] = []
        ids, rows = orjson.loads(fields[IDS_FIELD]), orjson.loads(fields[ROWS_FIELD])
        for index, (line_id, row) in enumerate(zip(ids, rows, strict=True)):
            if index <= skip_through:
                continue
            line = _line(line_id, row)
            if not self.matches(line):
                continue
            if self.cap.take():
                messages.append({"type": "line", "id": f"{entry_id}.{index}", "line": _shown(line)})
            else:
                self.dropped += 1
        if self.dropped:
            messages.append(
                {"type": "dropped", "count": self.dropped, "limit_per_second": self.cap.per_second}
            )
            self.dropped = 0
        return messages


def _line(line_id: int, row: list[Any]) -> dict[str, Any]:
    line = {"id": line_id, **dict(zip(ROW_COLUMNS, row, strict=True))}
    line["attrs"] = orjson.loads(line["attrs"]) if line["attrs"] else {}
    return line


def _shown(line: dict[str, Any]) -> dict[str, Any]:
    return {**line, "ts": dt.datetime.fromtimestamp(line["ts"], dt.UTC).isoformat()}


def subscribe(
    redis: Redis, q: str = "", *, after: str | None = None, max_lines_per_second: int = 500
) -> TailSubscription:
    """A live tail of lines matching ``q``, from position ``after`` or from now."""
    return TailSubscription(redis, q, after=after, max_lines_per_second=max_lines_per_second)
