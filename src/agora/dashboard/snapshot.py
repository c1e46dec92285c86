"""One snapshot of everything the page shows, built at most once a second per time range and
shared by every socket of the process.

A snapshot is complete on its own (the page redraws from it, never from a diff), so a browser
that missed some only ever needs the newest one. Lists are capped and, as a last guard, trimmed
until the encoded message fits ``MAX_SNAPSHOT_BYTES``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from agora.core.dependencies import AppServices
from agora.core.serialization import dumps
from agora.dashboard.commerce import commerce_section
from agora.dashboard.queues import queue_depths
from agora.dashboard.ranges import TimeRange

MAX_SNAPSHOT_BYTES = 16 * 1024
SNAPSHOT_INTERVAL_S = 1.0
CRAWL_SECTION: dict[str, Any] | None = None

Section = Callable[[AppServices, dt.datetime, TimeRange], Awaitable[dict[str, Any]]]


async def build_snapshot(
    services: AppServices, time_range: TimeRange, extra_sections: tuple[Section, ...] = ()
) -> dict[str, Any]:
    """Read every figure for ``time_range`` now."""
    now = dt.datetime.now(dt.UTC)
    async with services.database.sessionmaker() as session:
        commerce = await commerce_section(session, services.redis, now, time_range)
        queues = await queue_depths(session, services.settings.task_queue, commerce["flash_sales"])
    snapshot: dict[str, Any] = {
        "type": "snapshot",
        "at": now.isoformat(),
        "range": time_range.name,
        "start": int(time_range.start(now).timestamp()),
        "step": time_range.step_s,
        "commerce": commerce,
        "queues": queues,
        "crawl": CRAWL_SECTION,
    }
    for section in extra_sections:
        snapshot.update(await section(services, now, time_range))
    return snapshot


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
    extra_sections: tuple[Section, ...] = ()
    interval_s: float = SNAPSHOT_INTERVAL_S
    _latest: dict[str, tuple[float, bytes]] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def latest(self, time_range: TimeRange) -> bytes:
        """A snapshot of ``time_range`` at most ``interval_s`` old."""
        lock = self._locks.setdefault(time_range.name, asyncio.Lock())
        async with lock:
            built = self._latest.get(time_range.name)
            if built is not None and time.monotonic() - built[0] < self.interval_s:
                return built[1]
            message = encode(await build_snapshot(self.services, time_range, self.extra_sections))
            self._latest[time_range.name] = (time.monotonic(), message)
            return message
