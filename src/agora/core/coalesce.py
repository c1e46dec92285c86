"""Notices that follow commits, sent in the background and coalesced.

Some of what a commit triggers only tells another party to look again: a nudge to the outbox
relay, a stock-change message to the stock watchers. Neither carries data the receiver could
miss (the relay reads its rows, a watcher reads the committed levels), so notices asked for
close together may go out as one, and the request that committed need not wait for them.
Sent one by one and awaited, they cost an API process a broker or Redis round trip per write
request, about as much CPU as the rest of a small write.

A ``Coalescer`` sends what it is given in the background, one batch at a time and at most one
per ``interval`` (``INTERVAL_S`` in the API; no wait in a Celery worker, whose task waits for
its notices instead): each item once per batch, whatever number of commits asked for it. A
notice is never sent before the commit that asked for it (callers add items once committed),
and goes out at most ``interval`` plus a round trip after it. A stopping process sends what is
pending (``all_sent`` in its lifespan); one lost with a killed process is the receiver's to
catch up on, as one its transport refused (the relay's periodic run, a watcher's next read).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any, Generic, TypeVar

T = TypeVar("T", bound=Hashable)

INTERVAL_S = 0.05  # the shortest time between two batches of one kind from one process
Deliver = Callable[[list[T]], Awaitable[None]]


class Coalescer(Generic[T]):
    """Hands the items ``add``-ed to ``deliver`` in the background, in batches at most one per
    ``interval``; ``deliver`` handles its own failures (logging them), the items being notices
    whose loss only delays their receiver."""

    def __init__(self, deliver: Deliver[T], interval: float) -> None:
        self.deliver = deliver
        self.interval = interval
        self._asked: dict[T, None] = {}
        self._sender: asyncio.Task[None] | None = None
        self._sent_at = -interval

    def add(self, items: Iterable[T]) -> None:
        """Send ``items`` with the next batch (each item once, in the order first asked)."""
        self._asked.update(dict.fromkeys(items))
        if self._asked and (self._sender is None or self._sender.done()):
            self._sender = asyncio.create_task(self._send())

    async def sent(self) -> None:
        """Return once every item added so far has been handed to ``deliver``."""
        while self._sender is not None and not self._sender.done():
            await asyncio.shield(self._sender)

    async def _send(self) -> None:
        loop = asyncio.get_running_loop()
        while self._asked:
            await asyncio.sleep(max(0.0, self._sent_at + self.interval - loop.time()))
            items, self._asked = list(self._asked), {}
            await self.deliver(items)
            self._sent_at = loop.time()


class _LoopCoalescers:
    """The coalescers of one event loop, one per ``deliver``, all with the loop's interval."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.by_deliver: dict[Callable[..., Awaitable[None]], Coalescer[Any]] = {}


_loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopCoalescers] = (
    weakref.WeakKeyDictionary()
)


def coalesced(deliver: Deliver[T]) -> Coalescer[T]:
    """The running event loop's coalescer sending to ``deliver``."""
    loop = asyncio.get_running_loop()
    coalescers = _loops.get(loop)
    if coalescers is None:
        coalescers = _loops[loop] = _LoopCoalescers(INTERVAL_S)
    found: Coalescer[T] | None = coalescers.by_deliver.get(deliver)
    if found is None:
        found = coalescers.by_deliver[deliver] = Coalescer(deliver, coalescers.interval)
    return found


def send_without_delay(loop: asyncio.AbstractEventLoop) -> None:
    """Make ``loop``'s coalescers send as soon as asked: for a worker whose tasks wait for
    their notices (``all_sent``) before returning, so that none is held back for the next."""
    _loops[loop] = _LoopCoalescers(0.0)


async def all_sent() -> None:
    """Return once everything asked of the running loop's coalescers is sent: for a process
    about to stop, or a task about to return."""
    coalescers = _loops.get(asyncio.get_running_loop())
    for coalescer in list(coalescers.by_deliver.values()) if coalescers else []:
        await coalescer.sent()
