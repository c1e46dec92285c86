"""A bulkhead: at most so many requests of one kind at once in a process, the rest wait a while
and are then turned away with a 503.

Why: a request that waits on a slow outside party while it holds a pooled database connection
(a payment opening waits on its provider inside its transaction) could, many at once, take every
connection of the process, and every other request would then wait for the pool. Taking a slot
before the first statement keeps connections free for everyone else: the kind of request that is
stuck waits on its own, without a connection, and gives up after ``wait`` seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog

from agora.core.errors import ServiceUnavailable

log = structlog.get_logger(__name__)


class Bulkhead:
    """``limit`` slots; a caller finding them all taken waits up to ``wait`` seconds for one,
    then gets the problem ``<name>_busy``."""

    def __init__(self, name: str, *, limit: int, wait: float, retry_after: int) -> None:
        self.name = name
        self.limit = limit
        self._wait = wait
        self._retry_after = retry_after
        self._slots = asyncio.Semaphore(limit)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a slot for the block; ``ServiceUnavailable`` (503, with ``Retry-After``) if none
        frees up in time."""
        try:
            async with asyncio.timeout(self._wait):
                await self._slots.acquire()
        except TimeoutError:
            log.warning("bulkhead_full", bulkhead=self.name, limit=self.limit)
            raise ServiceUnavailable(
                "Too many requests of this kind are in progress; retry shortly.",
                code=f"{self.name}_busy",
                headers={"Retry-After": str(self._retry_after)},
            ) from None
        try:
            yield
        finally:
            self._slots.release()
