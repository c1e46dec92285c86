"""Fetching one page safely: guarded addresses, bounded size, time and redirects, conditional.

One ``aiohttp`` session is shared by every fetch of a crawler process. Every address a fetch
connects to is checked by ``agora.core.netguard`` after DNS resolution (the resolver below
refuses non-public answers, and each URL of a redirect chain is checked before it is requested),
unless ``AGORA_CRAWLER_ALLOW_PRIVATE`` is set. Redirects are followed by hand so that each hop is
checked and counted, and, when the caller gives ``Hops``, let through by the hop's host (its
robots.txt and its politeness gate: see ``gate.py``). A recrawl sends the page's ``ETag`` and
``Last-Modified`` back, so an unchanged page costs a 304 and no body.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import socket
import time
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urljoin

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from agora.core.netguard import UnsafeTarget, resolve_allowed
from agora.crawler.metrics import FETCH_SECONDS
from agora.settings import Settings

_CHUNK = 65_536
_CHECK_TTL_S = 60
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class FetchLimits:
    """What one fetch may cost."""

    timeout_s: float
    max_bytes: int
    max_redirects: int
    allow_private: bool
    user_agent: str

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchLimits:
        """The limits named by ``AGORA_CRAWLER_*``."""
        return cls(
            timeout_s=settings.crawler_fetch_timeout,
            max_bytes=settings.crawler_max_page_bytes,
            max_redirects=settings.crawler_max_redirects,
            allow_private=settings.crawler_allow_private,
            user_agent=settings.crawler_user_agent,
        )


@dataclass(slots=True)
class FetchResult:
    """What a fetch returned: a status (0 when no answer came) and, for a 200, the body."""

    url: str
    status: int
    body: bytes = b""
    content_type: str = ""
    etag: str | None = None
    last_modified: str | None = None
    retry_after_s: float | None = None
    error: str | None = None


class HopRefused(Exception):
    """A request that may not be made (now): robots.txt disallows it, or its host's gate stays
    closed past the fetch's time; ``retry_after_s`` says when it might open."""

    def __init__(self, url: str, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.url = url
        self.reason = reason
        self.retry_after_s = retry_after_s


class Hops(Protocol):
    """What lets each redirect hop of a fetch through to its host."""

    def passage(
        self, url: str, *, origin: str, deadline: float
    ) -> AbstractAsyncContextManager[None]:
        """Hold the way to ``url`` for one request of the fetch that began at ``origin``,
        waiting at most until ``deadline`` (event loop time); raise ``HopRefused`` if not."""
        ...


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, refusing names that resolve to non-public addresses: the connection
    goes to the very addresses that were checked, so a second DNS answer cannot swap one in."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The checked addresses of ``host``."""
        bracketed = f"[{host}]" if ":" in host else host
        addresses = await resolve_allowed(
            f"http://{bracketed}:{port or 80}/", allow_private=self.allow_private
        )
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        """Nothing to release."""


class Fetcher:
    """Fetches pages through one shared ``aiohttp`` session."""

    def __init__(self, limits: FetchLimits, connections: int) -> None:
        self.limits = limits
        connector = aiohttp.TCPConnector(
            limit=connections,
            resolver=GuardedResolver(allow_private=limits.allow_private),
            ttl_dns_cache=_CHECK_TTL_S,
        )
        self.session = aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": limits.user_agent},
            timeout=aiohttp.ClientTimeout(total=limits.timeout_s),
        )
        self._checked: dict[str, float] = {}

    async def close(self) -> None:
        """Close the session and its connections."""
        await self.session.close()

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        hops: Hops | None = None,
    ) -> FetchResult:
        """GET ``url`` within the limits, each redirect hop let through by ``hops`` when given
        (the caller holds the way to ``url`` itself); never raises for what the remote side
        does."""
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        # Each step is bounded by the deadline on its own (the requests by aiohttp's timeout,
        # the gate and the address check by theirs): no timer wraps the whole fetch, which would
        # cost a third of a plain request.
        deadline = asyncio.get_running_loop().time() + self.limits.timeout_s
        try:
            # most pages answer at once: their fetch is this one request, no further layer
            answer = await self._request(url, headers, deadline)
            if isinstance(answer, FetchResult):
                return answer
            return await self._follow(url, answer, headers, hops, deadline)
        except HopRefused as refused:
            return FetchResult(
                refused.url, 0, error=refused.reason, retry_after_s=refused.retry_after_s
            )
        except UnsafeTarget as error:
            return FetchResult(url, 0, error=f"refused: {error.detail}")
        except (aiohttp.ClientError, TimeoutError, OSError, UnicodeError) as error:
            return FetchResult(url, 0, error=type(error).__name__ or "error")

    async def _follow(
        self, origin: str, url: str, headers: dict[str, str], hops: Hops | None, deadline: float
    ) -> FetchResult:
        """The redirects from ``origin``, whose first hop is ``url``."""
        for _ in range(self.limits.max_redirects):
            if hops is not None:
                async with hops.passage(url, origin=origin, deadline=deadline):
                    answer = await self._request(url, headers, deadline)
            else:
                answer = await self._request(url, headers, deadline)
            if isinstance(answer, FetchResult):
                return answer
            url = answer
        return FetchResult(url, 0, error="too many redirects")

    async def _request(
        self, url: str, headers: dict[str, str], deadline: float
    ) -> FetchResult | str:
        """One request, done by ``deadline``: its result, or the URL it redirects to."""
        # what lies between "//" and the next "/": the host, or more (a different key is only
        # a miss), never a string another host's check could have passed
        host = url.partition("//")[2].partition("/")[0]
        if self._checked.get(host, 0.0) <= time.monotonic():
            await self._check(url, host, deadline)
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise TimeoutError
        timeout = aiohttp.ClientTimeout(total=remaining)
        started = time.perf_counter()
        try:
            async with self.session.get(
                url, headers=headers or None, allow_redirects=False, timeout=timeout
            ) as response:
                status = response.status
                if status in _REDIRECTS and "Location" in response.headers:
                    return urljoin(url, response.headers["Location"])
                if status != 200:
                    return _result(url, response, b"")
                declared = response.content_length
                if (declared or 0) > self.limits.max_bytes:
                    return FetchResult(url, 0, error="too large")
                if declared is not None and "Content-Encoding" not in response.headers:
                    body = await response.read()  # no more than the length declared, which fits
                else:
                    bounded = await _read_bounded(response, self.limits.max_bytes)
                    if bounded is None:
                        return FetchResult(url, 0, error="too large")
                    body = bounded
                return _result(url, response, body)
        finally:
            FETCH_SECONDS.observe(time.perf_counter() - started)

    async def _check(self, url: str, host: str, deadline: float) -> None:
        """Refuse a URL whose host is not public (aiohttp skips the resolver for an address
        written in the URL, so this check covers those); a host passed is trusted a while."""
        async with asyncio.timeout_at(deadline):
            await resolve_allowed(url, allow_private=self.limits.allow_private)
        self._checked[host] = time.monotonic() + _CHECK_TTL_S


def _result(url: str, response: aiohttp.ClientResponse, body: bytes) -> FetchResult:
    headers = response.headers
    status = response.status
    return FetchResult(
        url=url,
        status=status,
        body=body,
        content_type=headers.get("Content-Type", ""),
        etag=headers.get("ETag"),
        last_modified=headers.get("Last-Modified"),
        # only a 429 or a 503 is waited out (a header lookup costs as much as the rest)
        retry_after_s=retry_after(headers.get("Retry-After")) if status in (429, 503) else None,
    )


async def _read_bounded(response: aiohttp.ClientResponse, max_bytes: int) -> bytes | None:
    """A body of undeclared (or compressed) length, read no further than ``max_bytes`` once
    decoded (None past it)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date)."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())
