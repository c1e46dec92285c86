"""Requests no lease covers, let through by their host's robots.txt and politeness gate.

A leased URL passed its host's gate in the lease script. Two kinds of request have not: a
redirect hop (to another host, or a second request to the same one) and the fetches made for
staff outside a crawl (sitemap discovery). Each is checked against its host's robots.txt (read
first, through the gate, when unknown) and waits for the gate as a lease would: next allowed
start reached, not paused, circuit closed, a slot free. It holds that slot while its request
runs (``lua/enter.lua``, ``lua/leave.lua``), shared with every crawler process. A hop back to the
host whose slot the fetch already holds takes a start but no second slot, so a host allowed one
fetch at a time is not deadlocked by its own redirect.

A wait longer than the fetch may still take is not waited: the request is refused as held
back, with the time the gate needs, and the crawler asks for its URL again after that time.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from protego import Protego

from agora.core.netguard import UnsafeTarget
from agora.crawler.fetch import Fetcher, FetchResult, HopRefused
from agora.crawler.frontier import Frontier, canonical_url, host_of
from agora.crawler.metrics import POLITENESS_WAIT_SECONDS
from agora.crawler.robots import RobotsBook, allows

ROBOTS_DISALLOWED = "robots disallowed"
HELD_BACK = "held back"
SLOT_POLL_S = 0.05


class HostGate:
    """Lets requests that no lease covers through to their hosts."""

    def __init__(self, frontier: Frontier, fetcher: Fetcher, robots: RobotsBook) -> None:
        self.frontier = frontier
        self.fetcher = fetcher
        self.robots = robots

    async def fetch(self, url: str) -> FetchResult:
        """GET ``url`` politely: robots.txt, the gate, then the fetch, its redirects likewise."""
        deadline = asyncio.get_running_loop().time() + self.fetcher.limits.timeout_s
        try:
            async with self.passage(url, deadline=deadline):
                return await self.fetcher.fetch(url, hops=self)
        except HopRefused as refused:
            return FetchResult(url, 0, error=refused.reason, retry_after_s=refused.retry_after_s)
        except UnsafeTarget as error:
            return FetchResult(url, 0, error=f"refused: {error.detail}")

    async def rules(self, url: str, deadline: float | None = None) -> Protego | None:
        """The robots.txt rules of the host of ``url`` (canonical), read through its gate when
        unknown, waiting until ``deadline`` at most (event loop time; by default the fetch
        timeout from now); None when robots.txt cannot be read (the host is paused: nothing is
        allowed). ``HopRefused`` when the gate stays closed longer."""
        if deadline is None:
            deadline = asyncio.get_running_loop().time() + self.fetcher.limits.timeout_s
        host = host_of(url)
        rules = await self.robots.rules(host)
        if rules is None:
            async with self._slot(url, host, deadline, hold=True):
                # another request may have read it while this one waited for the slot
                if await self.robots.rules(host) is None:
                    await self.robots.learn(url)
            rules = await self.robots.rules(host)
        return rules

    @asynccontextmanager
    async def passage(
        self, url: str, *, origin: str | None = None, deadline: float
    ) -> AsyncIterator[None]:
        """Hold the way to ``url`` for one request (see ``Hops``); ``origin``, the URL a
        redirected fetch began at, whose host's slot the fetch already holds."""
        canonical = canonical_url(url)
        host = host_of(canonical)
        rules = await self.rules(canonical, deadline)
        if rules is None or not allows(rules, canonical):
            raise HopRefused(url, ROBOTS_DISALLOWED)
        own_host = origin is not None and host_of(canonical_url(origin)) == host
        async with self._slot(url, host, deadline, hold=not own_host):
            yield

    @asynccontextmanager
    async def _slot(
        self, url: str, host: str, deadline: float, *, hold: bool
    ) -> AsyncIterator[None]:
        """A start at ``host``'s gate, and a slot until the block ends when ``hold``."""
        token = uuid.uuid4().hex if hold else ""
        await self._enter(url, host, token, deadline)
        try:
            yield
        finally:
            if token:
                await self.frontier.leave_gate(host, token)

    async def _enter(self, url: str, host: str, token: str, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        waited = False
        while (wait_ms := await self.frontier.enter_gate(host, token)) != 0:
            wait_s = SLOT_POLL_S if wait_ms < 0 else wait_ms / 1000
            if loop.time() + wait_s > deadline:
                raise HopRefused(url, HELD_BACK, retry_after_s=wait_s)
            waited = True
            await asyncio.sleep(wait_s)
        if waited:
            POLITENESS_WAIT_SECONDS.observe(loop.time() - started)
