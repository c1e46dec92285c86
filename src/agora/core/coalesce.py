"""Notices that follow commits, coalesced and sent in the background by the API.

Some of what a commit triggers only tells another party to look again, such as the outbox
relay's nudge: it carries nothing the receiver could miss (the relay reads its rows), so nudges
asked for close together may go out as one, and the request that committed need not wait for
them. Sent one by one and awaited, they cost an API process a broker publication per write
request, about as much CPU as the rest of a small write.

Inside ``coalescing()`` (the API's lifespan), ``send_coalesced`` hands notices to a
``Coalescer`` that sends them in the background, one batch at a time and at most one per
``INTERVAL_S``, each item once per batch whatever number of commits asked for it. A notice is
never sent before the commit that asked for it (callers send once committed), and goes out at
most ``INTERVAL_S`` plus a round trip after it. Leaving ``coalescing()`` sends what is pending;
one lost with a killed process is the receiver's to catch up on, as one its transport refused
(the relay's periodic run). Everywhere else (a Celery task, a command, a test) notices are sent
at once and awaited: a task returns with its notices sent, none held back for the next (a flash
sale's tickets become orders one task after another).

An item outlives the call that asked for it, so it must hold nothing its caller may close
meanwhile: the deliverer brings its own transport, or the item names the one it holds
(``send_coalesced(..., holding=client)``) and is coalesced only while a ``coalescing(client)``
scope keeps that client open (the API's own Redis client, closed after the scope ends); a notice
holding any other client (a test's, a task's) is sent at once, as outside.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable
from contextlib import asynccontextmanager
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


class _LoopCoalescers(dict[Callable[..., Awaitable[None]], Coalescer[Any]]):
    """The coalescers of one event loop, one per ``deliver``, how many ``coalescing()``
    blocks (apps sharing the loop) are open on it, and the transports they keep open."""

    users = 0

    def __init__(self) -> None:
        super().__init__()
        self.kept_open: list[object] = []

    def keeps_open(self, transport: object) -> bool:
        """Whether an open ``coalescing()`` block keeps ``transport`` open until it ends."""
        return any(kept is transport for kept in self.kept_open)


_loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopCoalescers] = (
    weakref.WeakKeyDictionary()
)


async def send_coalesced(
    deliver: Deliver[T], items: Iterable[T], *, holding: object | None = None
) -> None:
    """Hand ``items`` to ``deliver``: in the background, coalesced, inside ``coalescing()``;
    else now, each item once. Items ``holding`` their caller's transport are coalesced only
    inside a ``coalescing()`` that keeps it open."""
    coalescers = _loops.get(asyncio.get_running_loop())
    if coalescers is None or (holding is not None and not coalescers.keeps_open(holding)):
        await deliver(list(dict.fromkeys(items)))
        return
    coalescer: Coalescer[T] | None = coalescers.get(deliver)
    if coalescer is None:
        coalescer = coalescers[deliver] = Coalescer(deliver, INTERVAL_S)
    coalescer.add(items)


@asynccontextmanager
async def coalescing(*kept_open: object) -> AsyncIterator[None]:
    """Coalesce the running loop's notices while inside (an API process's life), those holding
    one of the ``kept_open`` transports included (the caller closes them only after leaving);
    on the way out, return once everything asked is sent."""
    loop = asyncio.get_running_loop()
    coalescers = _loops.setdefault(loop, _LoopCoalescers())
    coalescers.users += 1
    coalescers.kept_open.extend(kept_open)
    try:
        yield
    finally:
        for coalescer in list(coalescers.values()):
            await coalescer.sent()
        for transport in kept_open:
            coalescers.kept_open.remove(transport)
        coalescers.users -= 1
        if not coalescers.users:
            del _loops[loop]
