"""One snapshot of everything the page shows, built at most once a second per time range and
shared by every socket of the process.

A snapshot is complete on its own (the page redraws from it, never from a diff), so a browser
that missed some only ever needs the newest one. It is assembled from sections; a section that
is costly over a long range (ranked lists counted from raw lines) says how long its part may be
reused. Lists are capped by their sections and, as a last guard, trimmed until the encoded
message fits ``MAX_SNAPSHOT_BYTES``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agora.core.dependencies import AppServices
from agora.core.serialization import dumps
from agora.dashboard.ranges import TimeRange

MAX_SNAPSHOT_BYTES = 16 * 1024
SNAPSHOT_INTERVAL_S = 1.0

Reader = Callable[[AppServices, dt.datetime, TimeRange], Awaitable[dict[str, Any]]]


def every_snapshot(_: TimeRange) -> float:
    """Read on every snapshot."""
    return 0.0


@dataclass(frozen=True)
class Section:
    """A part of the snapshot: how to read it, and how long (seconds) a read may be reused."""

    read: Reader
    max_age: Callable[[TimeRange], float] = every_snapshot


def encode(snapshot: dict[str, Any]) -> bytes:
    """The snapshot as a JSON message no larger than ``MAX_SNAPSHOT_BYTES``: the longest list is
    halved until it fits, and ``truncated`` says so."""
    message = dumps(snapshot)
    while len(message) > MAX_SNAPSHOT_BYTES:
        longest = _longest_list(snapshot)
        if longest is None:
            raise ValueError("a snapshot without lists is larger than the message budget")
        del longest[max(1, len(longest) // 2) :]
        snapshot["truncated"] = True
        message = dumps(snapshot)
    return message


def _longest_list(value: Any) -> list[Any] | None:
    """The longest list of records (not a chart series) anywhere inside ``value``."""
    candidates: list[list[Any]] = []

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for child in node.values():
                visit(child)
        elif isinstance(node, list) and node and isinstance(node[0], dict | list):
            if len(node) > 1:
                candidates.append(node)
            for child in node:
                visit(child)

    visit(value)
    return max(candidates, key=len, default=None)


@dataclass
class SnapshotBoard:
    """The newest encoded snapshot per time range, rebuilt when older than the interval.

    One build runs at a time per range; sockets asking meanwhile wait for it and share its result,
    so the database sees one set of queries per range per interval whatever the number of pages.
    """

    services: AppServices
    sections: Sequence[Section]
    interval_s: float = SNAPSHOT_INTERVAL_S
    _latest: dict[str, tuple[float, bytes]] = field(default_factory=dict)
    _parts: dict[tuple[int, str], tuple[float, dict[str, Any]]] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def latest(self, time_range: TimeRange) -> bytes:
        """A snapshot of ``time_range`` at most ``interval_s`` old."""
        lock = self._locks.setdefault(time_range.name, asyncio.Lock())
        async with lock:
            built = self._latest.get(time_range.name)
            if built is not None and time.monotonic() - built[0] < self.interval_s:
                return built[1]
            message = encode(await self.build(time_range))
            self._latest[time_range.name] = (time.monotonic(), message)
            return message

    async def build(self, time_range: TimeRange) -> dict[str, Any]:
        """Read every section (reusing the parts still fresh enough) for ``time_range`` now."""
        now = dt.datetime.now(dt.UTC)
        snapshot: dict[str, Any] = {
            "type": "snapshot",
            "at": now.isoformat(),
            "range": time_range.name,
            "start": int(time_range.start(now).timestamp()),
            "step": time_range.step_s,
        }
        for index, section in enumerate(self.sections):
            key = (index, time_range.name)
            part = self._parts.get(key)
            if part is None or time.monotonic() - part[0] >= section.max_age(time_range):
                part = (time.monotonic(), await section.read(self.services, now, time_range))
                self._parts[key] = part
            snapshot.update(part[1])
        return snapshot
