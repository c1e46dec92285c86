"""An edge response cache: public GETs answered from already-encoded bytes, before routing.

A cached public read (a product, a list page, the category tree) costs the router, the
dependency graph, a Redis round trip for the default budget and header encoding, although its
bytes are the same for every anonymous caller. ``EdgeCacheMiddleware`` sits in front of all
that (pure ASGI): a ``GET`` with no credentials (no ``Authorization``, no ``Cookie``) is looked
up by path and query; a hit is answered from the stored status line, headers and body, or with
``304`` when ``If-None-Match`` names its ETag. Outer layers (request id, access log, metrics,
security and CORS headers) still run, so a hit looks exactly like the app's own answer.

**What is stored** is only what an endpoint marked with ``mark_public`` (along with the cache
tags its body depends on) and answered ``200``; nothing else ever is. Responses do not vary by
request header (no content negotiation, no compression in the app), so path and query are the
whole key.

**Invalidation** follows the two-level cache (``core/cache.py``): the edge registers with
``TwoLevelCache.follow`` and drops entries carrying a tag whenever the process's local cache
drops it, that is on the invalidation pub/sub message from any process, or everything when the
subscription is re-established. An answer whose production overlapped an invalidation is not
stored (an epoch, as in the local cache); entries live at most the local cache's TTL.

**The default budget** is still spent on hits under the API prefix, as
``DefaultBudgetMiddleware`` would, through ``BatchedBudget``: see there for the error it allows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agora.core.batched_budget import BatchedBudget
from agora.core.cache import LocalEntries
from agora.core.observability import RouteLabel, route_template

_MARK = "agora.edge_tags"
_EXCLUDED_REQUEST_HEADERS = frozenset({b"authorization", b"cookie"})


def mark_public(state: dict[str, object], tags: Iterable[str]) -> None:
    """Let the edge keep this request's ``200`` answer until one of ``tags`` is invalidated
    (``state`` is the ASGI scope's ``state``: ``request.scope["state"]``)."""
    state[_MARK] = tuple(tags)


@dataclass(slots=True)
class _Entry:
    headers: list[tuple[bytes, bytes]]
    body: bytes
    etag: bytes
    not_modified_headers: list[tuple[bytes, bytes]]
    route: RouteLabel


class EdgeCache(LocalEntries):
    """This process's stored answers, by key, indexed by tag; bounded and short-lived."""

    def __contains__(self, key: str) -> bool:
        return self.fresh(key) is not None


class EdgeCacheMiddleware:
    """Answers credential-less GETs from ``EdgeCache`` and fills it from marked answers."""

    def __init__(
        self, app: ASGIApp, *, edge: EdgeCache, budget: BatchedBudget, metered_prefix: str
    ) -> None:
        self.app = app
        self.edge = edge
        self.budget = budget
        self.metered_prefix = metered_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        if_none_match = b""
        for name, value in scope["headers"]:
            if name in _EXCLUDED_REQUEST_HEADERS:
                await self.app(scope, receive, send)
                return
            if name == b"if-none-match":
                if_none_match = value
        query = scope["query_string"]
        key = scope["path"] + "?" + query.decode("latin-1") if query else scope["path"]
        found = self.edge.fresh(key)
        if found is None:
            await self._fill(key, scope, receive, send)
            return
        entry: _Entry = found.value
        scope["route"] = entry.route
        metered = scope["path"].startswith(self.metered_prefix)
        refusal = await self.budget.spend(scope) if metered else None
        if refusal is not None:
            await refusal(scope, receive, send)
        elif if_none_match and _etag_matches(if_none_match, entry.etag):
            await _answer(send, 304, entry.not_modified_headers, b"")
        else:
            await _answer(send, 200, entry.headers, entry.body)

    async def _fill(self, key: str, scope: Scope, receive: Receive, send: Send) -> None:
        epoch = self.edge.epoch
        state = scope.setdefault("state", {})
        headers: list[tuple[bytes, bytes]] | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal headers
            if message["type"] == "http.response.start":
                if message["status"] == 200 and _MARK in state:
                    headers = list(message.get("headers", []))  # before outer layers add theirs
            elif headers is not None and message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    self._store(key, scope, headers, b"".join(chunks), state[_MARK], epoch)
            await send(message)

        await self.app(scope, receive, capture)

    def _store(
        self,
        key: str,
        scope: Scope,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        tags: tuple[str, ...],
        epoch: int,
    ) -> None:
        kept = [(n, v) for n, v in headers if n.lower() in (b"etag", b"cache-control")]
        etag = next((v for n, v in kept if n.lower() == b"etag"), b"")
        entry = _Entry(
            headers=headers,
            body=body,
            etag=etag,
            not_modified_headers=kept,
            route=RouteLabel(route_template(scope)),
        )
        self.edge.remember(key, tags, entry, epoch)


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _etag_matches(if_none_match: bytes, etag: bytes) -> bool:
    """The rule of the catalog's own ``If-None-Match`` handling, on bytes."""
    if not etag:
        return False
    candidates = {tag.strip().removeprefix(b"W/") for tag in if_none_match.split(b",")}
    return b"*" in candidates or etag in candidates
