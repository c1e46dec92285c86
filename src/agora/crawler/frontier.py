"""The crawl frontier: every URL to crawl, its state and its host's gate, in Redis.

A URL is in exactly one state: queued (in its host's queue, due now or later, which is also
where a fetched URL waits for its next crawl) or leased (handed to one crawler, until it is
acknowledged or the lease expires). Moving between states is one Lua script each (``lua/``), so
no crash between two commands can lose or duplicate a URL, and every script first returns
expired leases to their queues: a crawler killed mid-fetch costs a lease TTL, never a URL.

Politeness is enforced in the same scripts, for every crawler process at once: a host hands out
a URL only while it has fewer fetches in flight than its limit and its next allowed start is
reached; each start pushes the next one ``delay + margin`` later, where ``delay`` is the
larger of the host's setting and its robots.txt Crawl-delay, and the margin absorbs the time
between the grant (Redis time) and the request leaving the crawler. A request no lease covers (a
redirect hop, a sitemap read) passes the same gate through ``enter_gate`` and ``leave_gate``.

Memory per URL is kept small: a URL is known by the first 8 bytes of the SHA-1 of its canonical
form (a collision among a million URLs has odds of about 3e-8), its text is stored once, and the
queues and lease set hold only those 8-byte ids.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from w3lib.url import canonicalize_url

from agora.core.netguard import UnsafeTarget, check_url_shape
from agora.core.redis import LuaScript
from agora.settings import Settings

KEY_PREFIX = "agora:crawl:"
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class HostPolicy:
    """How politely a host is crawled, and how often its pages are crawled again."""

    delay_ms: int = 1000
    max_concurrency: int = 1
    recrawl_min_s: int = 3600
    recrawl_max_s: int = 86400


@dataclass(frozen=True)
class FrontierConfig:
    """The frontier's timings, from the settings."""

    lease_ttl_ms: int
    start_margin_ms: int
    breaker_threshold: int
    breaker_cooldown_ms: int
    robots_ttl_ms: int
    default_policy: HostPolicy = HostPolicy()

    @classmethod
    def from_settings(cls, settings: Settings) -> FrontierConfig:
        """The configuration named by ``AGORA_CRAWLER_*``."""
        return cls(
            lease_ttl_ms=int(settings.crawler_lease_ttl * 1000),
            start_margin_ms=settings.crawler_start_margin_ms,
            breaker_threshold=settings.crawler_breaker_threshold,
            breaker_cooldown_ms=int(settings.crawler_breaker_cooldown * 1000),
            robots_ttl_ms=settings.crawler_robots_ttl * 1000,
        )


class Outcome(enum.StrEnum):
    """What became of a leased URL; decides when it is due again (see ``lua/ack.lua``)."""

    CHANGED = "changed"
    SAME = "same"
    NOT_MODIFIED = "notmod"
    RETRY = "retry"
    ERROR = "error"
    SKIP = "skip"
    DEFER = "defer"
    LATER = "later"
    RELEASED = "release"


# The records a crawler makes for every page (a lease, its fetch's result, its acknowledgement)
# are slotted dataclasses, not frozen ones: a frozen one's fields are each set through
# ``object.__setattr__``, five times the cost, which summed over a page's records came to
# several microseconds of CPU a page. Nothing changes them once made.
@dataclass(slots=True)
class Lease:
    """A URL handed to one crawler until ``token`` (its expiry, in Redis milliseconds), and
    the host (with its port when not the scheme's default) whose gate granted it."""

    id: bytes
    url: str
    token: str
    host: str
    # the lease as the scripts' records name it: id, token and host (see ``_RECORD_END``)
    slot: bytes
    etag: str | None = None
    last_modified: str | None = None
    last_fetched_ms: int | None = None
    held_ms: int = 0
    has_delay: bool = False
    took_last_slot: bool = False


@dataclass(frozen=True)
class Grant:
    """What one lease call gave: the leases, how many seconds until a host is next ready (None:
    none is), and whether a host with a delay was ready while no fetcher was idle."""

    leases: list[Lease]
    wait_s: float | None
    passed_over: bool


@dataclass(slots=True)
class Ack:
    """The acknowledgement of a lease: its outcome and what the next crawl needs."""

    lease: Lease
    outcome: Outcome
    wait_ms: int = 0
    urgency: int = 0
    etag: str | None = None
    last_modified: str | None = None


class UrlState(enum.StrEnum):
    """Where a URL stands in the frontier."""

    QUEUED = "queued"
    LEASED = "leased"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class UrlStatus:
    """A URL's state, when it is due and when it was last fetched."""

    state: UrlState
    next_due_at: dt.datetime | None
    last_fetched_at: dt.datetime | None


def canonical_url(url: str) -> str:
    """The form under which a URL is deduplicated (``w3lib``: sorted query, no fragment ...),
    without the scheme's default port; ``UnsafeTarget`` for what is not an http(s) URL."""
    check_url_shape(url)
    parts = urlsplit(canonicalize_url(url.strip()))
    if parts.username is not None or parts.password is not None:
        raise UnsafeTarget(f"{url!r} carries credentials")
    netloc = (parts.hostname or "").lower()
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


def url_id(url: str) -> bytes:
    """The 8-byte id of a canonical URL."""
    return hashlib.sha1(url.encode(), usedforsecurity=False).digest()[:8]


def host_of(url: str) -> str:
    """The host key of a canonical URL (``host`` or ``host:port``)."""
    return url.split("/", 3)[2]


def _from_ms(value: float | None) -> dt.datetime | None:
    if value is None:
        return None
    return dt.datetime.fromtimestamp(value / 1000, dt.UTC)


def as_text(value: bytes | str) -> str:
    """A Redis reply as text."""
    return value.decode() if isinstance(value, bytes) else value


class Frontier:
    """The frontier's operations; every process of every machine shares one through Redis."""

    def __init__(self, redis: Redis, config: FrontierConfig, prefix: str = KEY_PREFIX) -> None:
        self.redis = redis
        self.config = config
        self.prefix = prefix
        # Who leases through this object, to share each host's slots fairly among crawlers.
        self.crawler_id = uuid.uuid4().hex
        self._scripts = _scripts()

    def key(self, *parts: str) -> str:
        """A key of this frontier."""
        return self.prefix + ":".join(parts)

    async def _run(self, name: str, *args: bytes | str | int) -> Any:
        """A frontier script's reply, sent packed by SHA (``core/redis.LuaScript``), not through
        redis-py's command path, whose packing and hooks cost the crawler CPU on every call."""
        threshold = self.config.breaker_threshold
        return await self._scripts[name].run(self.redis, (), (self.prefix, threshold, *args))

    async def configure_host(self, host: str, policy: HostPolicy) -> None:
        """Set a host's politeness and recrawl bounds (a site's settings)."""
        async with self.redis.pipeline(transaction=True) as pipeline:
            pipeline.hset(
                self.key("host", host),
                mapping={
                    "delay": policy.delay_ms,
                    "maxc": policy.max_concurrency,
                    "min": policy.recrawl_min_s,
                    "max": policy.recrawl_max_s,
                },
            )
            pipeline.sadd(self.key("known"), host)
            await pipeline.execute()

    async def add(self, urls: Iterable[str], urgency: int = 0) -> int:
        """Queue canonical URLs not known yet, due now; returns how many were new.

        ``urgency`` (0-100) puts them that many milliseconds ahead of others due at once.
        """
        args = self._default_policy()
        added = 0
        batch: list[Any] = []
        for url in urls:
            batch += [url_id(url), url, host_of(url), urgency]
            if len(batch) >= 4000:
                added += int(await self._run("add", *args, *batch))
                batch = []
        if batch:
            added += int(await self._run("add", *args, *batch))
        return added

    def _default_policy(self) -> list[int]:
        """The policy a host seen for the first time gets, as the scripts take it."""
        policy = self.config.default_policy
        return [policy.delay_ms, policy.max_concurrency, policy.recrawl_min_s, policy.recrawl_max_s]

    async def lease(
        self, count: int, ended: Sequence[Lease] = ()
    ) -> tuple[list[Lease], float | None]:
        """Up to ``count`` URLs whose hosts' gates are open, after freeing the slots of the
        ``ended`` fetches; also how many seconds until a host is next ready (None: none is)."""
        grant = await self.lease_ahead(count, 0, ended)
        return grant.leases, grant.wait_s

    async def lease_ahead(self, idle: int, ahead: int, ended: Sequence[Lease] = ()) -> Grant:
        """Up to ``idle`` URLs to start now, and up to ``ahead`` more of hosts without a delay
        to hold until a fetcher is free, after freeing the slots of the ``ended`` fetches."""
        config = self.config
        reply = await self._run(
            "lease",
            idle,
            ahead,
            config.lease_ttl_ms,
            config.start_margin_ms,
            self.crawler_id,
            b"".join([lease.slot + _RECORD_END for lease in ended]),
        )
        wait_ms = int(reply[0])
        return Grant(_leases(reply), wait_ms / 1000 if wait_ms >= 0 else None, bool(reply[1]))

    async def retire(self) -> None:
        """Stop counting this crawler among the live ones (it leases no more)."""
        await self.redis.zrem(self.key("crawlers"), self.crawler_id)

    async def enter_gate(self, host: str, token: str) -> int:
        """Let one request that no lease covers through ``host``'s gate, holding a slot under
        ``token`` (``""``: a start without a slot); 0 when let through, else milliseconds until
        the gate may open (-1: when a slot is freed). A host not known yet gets the default
        policy."""
        config = self.config
        return int(
            await self._run(
                "enter",
                host,
                token,
                config.lease_ttl_ms,
                config.start_margin_ms,
                *self._default_policy(),
            )
        )

    async def leave_gate(self, host: str, token: str) -> None:
        """Free the slot ``token`` holds at ``host``'s gate."""
        await self._run("leave", host, token)

    async def sizes(self) -> tuple[int, int]:
        """How many URLs are queued and how many leased (two O(1) reads)."""
        async with self.redis.pipeline(transaction=False) as pipeline:
            pipeline.hlen(self.key("url"))
            pipeline.zcard(self.key("leases"))
            known, leased = await pipeline.execute()
        return max(int(known) - int(leased), 0), int(leased)

    async def ack(self, acks: Sequence[Ack], *, slots_freed: bool = False) -> int:
        """Acknowledge leases with their outcomes, and free their hosts' slots unless
        ``slots_freed`` (each lease was, or will be, among the ended fetches of a lease call);
        returns how many were still current."""
        if not acks:
            return 0
        packed = b"".join(
            [
                ack.lease.slot
                + f"\x1f{ack.outcome.value}\x1f{ack.wait_ms}\x1f{ack.urgency}\x1f"
                f"{_field(ack.etag)}\t{_field(ack.last_modified)}\x1e".encode()
                for ack in acks
            ]
        )
        cooldown = self.config.breaker_cooldown_ms
        return int(await self._run("ack", cooldown, self.crawler_id, int(not slots_freed), packed))

    async def store_robots(
        self, host: str, body: str | None, *, crawl_delay_ms: int, pause_ms: int
    ) -> None:
        """Keep a host's robots.txt (``body``) and Crawl-delay, or pause the host (``pause_ms``)
        when its robots.txt could not be read."""
        config = self.config
        await self._run(
            "robots",
            host,
            body or "",
            config.robots_ttl_ms,
            crawl_delay_ms,
            pause_ms,
            config.start_margin_ms,
        )

    async def robots(self, host: str) -> tuple[str | None, int]:
        """A host's robots.txt as kept (None when unknown) and its milliseconds left."""
        async with self.redis.pipeline(transaction=False) as pipeline:
            pipeline.get(self.key("robots", host))
            pipeline.pttl(self.key("robots", host))
            body, ttl = await pipeline.execute()
        if body is None:
            return None, 0
        return as_text(body), int(ttl)

    async def status(self, url: str) -> UrlStatus:
        """Where a canonical URL stands: queued or leased, next due, last fetched."""
        identifier = url_id(url)
        async with self.redis.pipeline(transaction=False) as pipeline:
            pipeline.zscore(self.key("q", host_of(url)), identifier)
            pipeline.zscore(self.key("leases"), identifier)
            pipeline.hget(self.key("meta"), identifier)
            due, leased, meta = await pipeline.execute()
        fetched_ms = _parse_meta(meta)[2] if meta else None
        if leased is not None:
            return UrlStatus(UrlState.LEASED, None, _from_ms(fetched_ms))
        if due is not None:
            return UrlStatus(UrlState.QUEUED, _from_ms(due), _from_ms(fetched_ms))
        return UrlStatus(UrlState.UNKNOWN, None, None)


def frontier_for(redis: Redis, settings: Settings) -> Frontier:
    """The frontier as the settings configure it."""
    return Frontier(redis, FrontierConfig.from_settings(settings))


# Records for a script, in one argument (one string costs redis-py far less to send than many):
# an 8-byte URL id, then fields separated by byte 31, ended by byte 30 (``unpack_records`` in
# ``lua/common.lua``). A lease's first fields, id, token and host, are joined once, when it is
# granted (``Lease.slot``): freeing its slot and acknowledging it each send them again.
_RECORD_END = b"\x1e"
_FIELD_BREAKS = str.maketrans({"\t": " ", "\x1e": " ", "\x1f": " "})


def _field(value: str | None) -> str:
    """A header value as a record field: no tab (it separates validators) nor record byte."""
    return value.translate(_FIELD_BREAKS) if value else ""


def _parse_meta(meta: bytes | str) -> tuple[str | None, str | None, int | None]:
    """ETag, Last-Modified and last fetch time (ms) from a URL's meta entry."""
    parts = as_text(meta).split("\t")
    if len(parts) < 4:
        return None, None, None
    return parts[2] or None, parts[3] or None, int(parts[1])


def _leases(reply: list[Any]) -> list[Lease]:
    """The leases of a lease script's reply (past its first two items): per host's grant, its
    host, token, flags and count, then each lease's id, URL, meta and held ms (see
    ``lua/lease.lua``). Read in one loop: a lease a page, where a call per lease and per field
    cost twice as much."""
    leases = []
    position, end = 2, len(reply)
    while position < end:
        host, token = as_text(reply[position]), as_text(reply[position + 1])
        flags, count = reply[position + 2], reply[position + 3]
        named = f"{token}\x1f{host}".encode()  # right after the 8-byte id
        has_delay, took_last_slot = flags & 1 == 1, flags & 2 == 2
        position += 4
        items = iter(reply[position : position + 4 * count])
        position += 4 * count
        for identifier, url, meta, held in zip(items, items, items, items, strict=True):
            etag, last_modified, fetched_ms = _parse_meta(meta) if meta else (None, None, None)
            leases.append(
                Lease(
                    identifier,
                    url.decode(),
                    token,
                    host,
                    identifier + named,
                    etag,
                    last_modified,
                    fetched_ms,
                    held,
                    has_delay,
                    took_last_slot,
                )
            )
    return leases


@functools.cache
def _lua(name: str) -> bytes:
    return resources.files("agora.crawler").joinpath("lua", f"{name}.lua").read_bytes()


@functools.cache
def _scripts() -> dict[str, LuaScript]:
    """The frontier's scripts, each with the shared functions of ``lua/common.lua`` first."""
    common = _lua("common")
    return {
        name: LuaScript.of(common + _lua(name))
        for name in ("add", "lease", "ack", "robots", "enter", "leave")
    }
