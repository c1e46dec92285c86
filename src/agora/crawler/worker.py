"""A crawler process's loop: lease URLs, fetch them politely, hand pages over, acknowledge.

One asyncio loop runs ``concurrency`` fetchers on one shared HTTP session, each taking the next
lease in hand as soon as its fetch ends. A leasing loop keeps leases in hand: for idle fetchers
at once, and, of hosts without a delay (whose starts are not timed from the grant), up to
``concurrency`` more, asked for in one Redis call once half are used, so a fetch never waits
for a round trip to Redis. An ended fetch's host slot is freed in the next lease call, at once
when it was the last slot its host gives this crawler. Fetched pages are handed to the
``PageHandler`` in batches (price watch writes a batch in one transaction), and only once the
handler returned are their leases acknowledged (their slots freed already: the acknowledgement
leaves them be); a process killed before that leaves the leases to expire, and the URLs are
fetched again, by whichever process comes next.
Redirect hops pass their host's robots.txt and gate (``gate.py``). What became of each lease is
counted, and the frontier's sizes published, for ``/metrics`` (``metrics.py``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from agora.crawler.fetch import Fetcher, FetchResult
from agora.crawler.frontier import Ack, Frontier, Lease, Outcome
from agora.crawler.gate import HELD_BACK, ROBOTS_DISALLOWED, HostGate
from agora.crawler.metrics import (
    POLITENESS_WAIT_SECONDS,
    FetchOutcome,
    fetch_counter,
    set_frontier_sizes,
)
from agora.crawler.robots import allows

IDLE_POLL_S = 0.05
STOP_GRACE_S = 10.0
SIZES_INTERVAL_S = 1.0
log = structlog.get_logger(__name__)


@dataclass(slots=True)
class Page:
    """A page fetched with a 200: what a handler looks at."""

    url: str
    body: bytes
    content_type: str


@dataclass(slots=True)
class Verdict:
    """A handler's reading of a page: whether what it watches changed, and how urgent the page
    is (0-100: an urgent page is crawled again sooner)."""

    changed: bool
    urgency: int = 0


class PageHandler(Protocol):
    """What a crawler does with the pages it fetched (one verdict per page, in order)."""

    async def handle(self, pages: Sequence[Page]) -> Sequence[Verdict]:
        """Record what the pages say; raise to leave their leases unacknowledged."""
        ...


# How a lease that gave the handler nothing is acknowledged, by what became of it.
_ACKED_AS = {
    FetchOutcome.NOT_MODIFIED: Outcome.NOT_MODIFIED,
    FetchOutcome.THROTTLED: Outcome.RETRY,
    FetchOutcome.ERROR: Outcome.ERROR,
    FetchOutcome.SKIPPED: Outcome.SKIP,
    FetchOutcome.REFUSED: Outcome.SKIP,
    FetchOutcome.ROBOTS_DISALLOWED: Outcome.SKIP,
    FetchOutcome.ROBOTS_TXT: Outcome.DEFER,
    FetchOutcome.HELD_BACK: Outcome.LATER,
}


@dataclass(slots=True)
class _Done:
    lease: Lease
    outcome: FetchOutcome
    result: FetchResult | None = None
    wait_ms: int = 0


class Crawler:
    """One crawler process's worth of concurrent fetches."""

    def __init__(
        self,
        frontier: Frontier,
        fetcher: Fetcher,
        gate: HostGate,
        handler: PageHandler,
        *,
        concurrency: int,
        batch_size: int,
        flush_interval: float,
    ) -> None:
        self.frontier = frontier
        self.fetcher = fetcher
        self.gate = gate
        self.robots = gate.robots
        self.handler = handler
        self.concurrency = concurrency
        self.ahead = concurrency
        # a lease in hand unused for half its TTL is given back rather than fetched: it could
        # expire mid-fetch, and its slot be given to another fetch of the host
        self.keep_s = frontier.config.lease_ttl_ms / 2000
        self._cooldown_ms = frontier.config.breaker_cooldown_ms
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self._in_hand: collections.deque[tuple[float, Lease]] = collections.deque()
        self._stale: list[Lease] = []
        self._idle = 0
        self._busy = 0
        self._passed_over = False
        self._ended: list[Lease] = []
        self._free_now = False
        self._done: list[_Done] = []
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()
        self._flush_now = asyncio.Event()
        self._sizes_due = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Crawl until ``stop`` is set, then finish the fetches under way and acknowledge."""
        flusher = asyncio.create_task(self._flush_loop(stop))
        waker = asyncio.create_task(self._wake_on(stop))
        fetchers = [asyncio.create_task(self._fetch_loop(stop)) for _ in range(self.concurrency)]
        try:
            await self._lease_loop(stop)
            await asyncio.wait(fetchers, timeout=STOP_GRACE_S)
        finally:
            waker.cancel()
            for task in fetchers:
                task.cancel()
            await asyncio.gather(*fetchers, return_exceptions=True)
            await self._release_in_hand()
            await self._free_ended()
            self._flush_now.set()
            await flusher
            with contextlib.suppress(Exception):
                await self.frontier.retire()

    async def _wake_on(self, stop: asyncio.Event) -> None:
        """Wake the leasing loop and the idle fetchers when ``stop`` is set."""
        await stop.wait()
        self._wake.set()
        self._ready.set()

    async def _lease_loop(self, stop: asyncio.Event) -> None:
        """Lease for idle fetchers at once; keep up to ``ahead`` leases of hosts without a delay
        in hand, asked for in batches once half are used; return ended fetches' slots with the
        next call, at once for a host whose slots they were the last of; give back the leases
        in hand for half their TTL; and call at least every ``IDLE_POLL_S``, which also keeps
        this crawler counted live."""
        loop = asyncio.get_running_loop()
        poll_at = 0.0
        while not stop.is_set():
            self._wake.clear()  # before looking: a wake while the call runs is not lost
            self._put_aside_stale(loop.time())
            idle = max(0, self._idle - len(self._in_hand))
            ahead = 0 if self._passed_over else self.ahead - len(self._in_hand)
            wait_s: float | None = IDLE_POLL_S
            if (
                idle
                or ahead > self.ahead // 2
                or self._free_now
                or self._stale
                or loop.time() >= poll_at
            ):
                if self._stale:
                    stale, self._stale = self._stale, []
                    await self.frontier.ack([Ack(lease, Outcome.RELEASED) for lease in stale])
                ended, self._ended, self._free_now = self._ended, [], False
                grant = await self.frontier.lease_ahead(idle, ahead, ended)
                poll_at = loop.time() + IDLE_POLL_S
                self._passed_over = grant.passed_over
                keep_until = loop.time() + self.keep_s
                for lease in grant.leases:
                    # a host with a delay timed its next start from this grant: start it first
                    if lease.has_delay:
                        self._in_hand.appendleft((keep_until, lease))
                    else:
                        self._in_hand.append((keep_until, lease))
                if grant.leases:
                    self._ready.set()
                    if grant.wait_s == 0 and len(grant.leases) < idle + ahead:
                        continue  # more may be ready: a host gives so many URLs a call
                wait_s = grant.wait_s
            timeout = min(poll_at - loop.time(), wait_s or IDLE_POLL_S)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(timeout, 0)):
                    await self._wake.wait()

    async def _fetch_loop(self, stop: asyncio.Event) -> None:
        """One fetcher: crawl leases in hand, one after the other, until ``stop``."""
        while not stop.is_set():
            # no coroutine to await while leases are in hand
            lease = self._take_in_hand() or await self._next_lease(stop)
            if lease is None:
                return
            try:
                await self._crawl(lease)
            except Exception:
                log.exception("acknowledgement failed; the lease will expire", url=lease.url)
            finally:
                self._busy -= 1

    def _put_aside_stale(self, now: float) -> None:
        """Set aside the leases in hand kept past their time, to be given back: while every
        fetcher is busy (a slow host) no fetcher looks at them."""
        if any(keep_until < now for keep_until, _ in self._in_hand):
            fresh = [
                (keep_until, lease) for keep_until, lease in self._in_hand if keep_until >= now
            ]
            self._stale += [lease for keep_until, lease in self._in_hand if keep_until < now]
            self._in_hand = collections.deque(fresh)

    def _take_in_hand(self) -> Lease | None:
        """The next lease in hand still worth fetching, if any."""
        now = asyncio.get_running_loop().time()
        while self._in_hand:
            keep_until, lease = self._in_hand.popleft()
            if len(self._in_hand) <= self.ahead // 2:
                self._wake.set()
            if now <= keep_until:
                self._busy += 1
                return lease
            self._stale.append(lease)
        return None

    async def _next_lease(self, stop: asyncio.Event) -> Lease | None:
        while True:
            while not self._in_hand:
                if stop.is_set():
                    return None
                self._idle += 1
                self._wake.set()
                self._ready.clear()
                try:
                    await self._ready.wait()
                finally:
                    self._idle -= 1
            if stop.is_set():
                return None
            if (lease := self._take_in_hand()) is not None:
                return lease

    async def _release_in_hand(self) -> None:
        """Give back the leases in hand that no fetcher took (due again at once)."""
        held = [lease for _, lease in self._in_hand] + self._stale
        self._in_hand, self._stale = collections.deque(), []
        try:
            await self.frontier.ack([Ack(lease, Outcome.RELEASED) for lease in held])
        except Exception:
            log.exception("could not give leases back; they will expire")

    async def _free_ended(self) -> None:
        """Free the host slots of the fetches that ended after the last lease call: their
        acknowledgements leave the slots to it."""
        ended, self._ended = self._ended, []
        if ended:
            try:
                await self.frontier.lease(0, ended)
            except Exception:
                log.exception("could not free host slots; they will expire")

    async def _crawl(self, lease: Lease) -> None:
        # one coroutine from lease to acknowledgement: every resumption of a fetch passes
        # through each coroutine layer above it
        try:
            if lease.held_ms > 0:
                POLITENESS_WAIT_SECONDS.observe(lease.held_ms / 1000)
            rules = self.robots.parsed(lease.host)
            if rules is None:
                rules = await self.robots.rules(lease.host)
            if rules is None:
                await self.robots.learn(lease.url)
                done = _Done(lease, FetchOutcome.ROBOTS_TXT)
            elif not allows(rules, lease.url):
                done = _Done(lease, FetchOutcome.ROBOTS_DISALLOWED)
            else:
                result = await self.fetcher.fetch(
                    lease.url, etag=lease.etag, last_modified=lease.last_modified, hops=self.gate
                )
                done = _classify(lease, result, self._cooldown_ms)
        except Exception:
            log.exception("crawl failed", url=lease.url)
            done = _Done(lease, FetchOutcome.ERROR)
        if done.result is None:
            # Nothing for the handler: acknowledged at once, so that a 429 or an error weighs
            # on the host's gate before its slot can be given to another fetch.
            fetch_counter(done.outcome).inc()
            await self.frontier.ack([_ack(done)])
        else:
            self._ended.append(lease)
            self._done.append(done)
            if len(self._done) >= self.batch_size:
                self._flush_now.set()
            if lease.took_last_slot:
                self._free_now = True
                self._wake.set()

    async def _flush_loop(self, stop: asyncio.Event) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.flush_interval):
                    await self._flush_now.wait()
            self._flush_now.clear()
            try:
                await self.flush()
                await self._publish_sizes()
            except Exception:
                log.exception("flush failed; the leases will expire and be crawled again")
            if stop.is_set() and not self._busy:
                await self.flush()
                return

    async def flush(self) -> None:
        """Hand the fetched pages to the handler, then acknowledge every finished lease."""
        done, self._done = self._done, []
        if not done:
            return
        fetch_counter(FetchOutcome.OK).inc(len(done))  # once a batch: pages are the most
        pages = [
            Page(item.lease.url, item.result.body, item.result.content_type)
            for item in done
            if item.result is not None
        ]
        verdicts = await self.handler.handle(pages)
        acks = []
        for item, verdict in zip(done, verdicts, strict=True):
            assert item.result is not None
            outcome = Outcome.CHANGED if verdict.changed else Outcome.SAME
            acks.append(
                Ack(
                    item.lease,
                    outcome,
                    urgency=verdict.urgency,
                    etag=item.result.etag,
                    last_modified=item.result.last_modified,
                )
            )
        # each of these leases went to ``_ended``: a lease call frees its slot
        await self.frontier.ack(acks, slots_freed=True)

    async def _publish_sizes(self) -> None:
        """Set the frontier's size gauges, at most once per ``SIZES_INTERVAL_S``."""
        if time.monotonic() < self._sizes_due:
            return
        self._sizes_due = time.monotonic() + SIZES_INTERVAL_S
        set_frontier_sizes(*await self.frontier.sizes())


def _ack(done: _Done) -> Ack:
    """The acknowledgement of a lease that gave the handler nothing (validators kept)."""
    lease = done.lease
    outcome = _ACKED_AS[done.outcome]
    return Ack(lease, outcome, done.wait_ms, 0, lease.etag, lease.last_modified)


def _classify(lease: Lease, result: FetchResult, default_wait_ms: int) -> _Done:
    """What a fetch result means for the URL's next crawl (pages with a 200 go to the handler)."""
    error = result.error or ""
    if result.status == 200:
        return _Done(lease, FetchOutcome.OK, result=result)
    if result.status == 304:
        return _Done(lease, FetchOutcome.NOT_MODIFIED)
    if result.status in (429, 503):
        wait = result.retry_after_s
        wait_ms = default_wait_ms if wait is None else int(wait * 1000)
        return _Done(lease, FetchOutcome.THROTTLED, wait_ms=wait_ms)
    if error == ROBOTS_DISALLOWED:
        return _Done(lease, FetchOutcome.ROBOTS_DISALLOWED)
    if error == HELD_BACK:
        return _Done(lease, FetchOutcome.HELD_BACK, wait_ms=int((result.retry_after_s or 0) * 1000))
    if error.startswith("refused"):
        return _Done(lease, FetchOutcome.REFUSED)
    if result.status == 0 or result.status >= 500:
        return _Done(lease, FetchOutcome.ERROR)
    return _Done(lease, FetchOutcome.SKIPPED)
