"""Two-level read cache: an in-process LRU, then Redis, then a loader (usually PostgreSQL).

**Invalidation is by tag, with generations.** Every entry names the tags it depends on (one
product, "every product list" ...). Each tag has a generation token in Redis. An entry is stored
in Redis together with the tokens its tags had when its load started, and is served only while
they are all still current. Invalidating a tag gives it a fresh token, once the write has
committed, and publishes the tag on a pub/sub channel; every process then drops its local
entries carrying that tag.

Why generations rather than deleting keys: a reader that loaded from a snapshot older than a
write may store its result *after* the writer's invalidation. With a plain ``DEL`` that stale
entry would be served until its TTL; here it carries the old token and is never served. Why tags
rather than one version for a whole namespace: a stock change on one product must not evict the
whole catalog, while one tag can still drop every list page at once.

Local entries go when the pub/sub message arrives (about a millisecond after the commit), and all
of them go whenever the subscription is (re)established, since messages may have been lost while
it was down; a short local TTL bounds staleness should a message still be missed. The process
that wrote drops its own local entries at once, so it reads its own writes.

A miss is loaded once per key per process (single flight): concurrent readers of a key await the
same load instead of stampeding the database. If Redis is unreachable, reads fall back to the
loader rather than failing, and skip Redis for a few seconds (``core/redis.Breaker``) so that a
frozen Redis does not cost every read a timeout; the subscription is retried until it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.db import pending
from agora.core.redis import Breaker
from agora.core.serialization import dumps, loads
from agora.settings import Settings

CHANNEL = "agora:cache:invalidations"
_TAG_PREFIX = "agora:cache:tag:"
_ENTRY_PREFIX = "agora:cache:entry:"
_TAG_TTL_S = 7 * 24 * 3600
_RESUBSCRIBE_DELAY_S = 1.0

# KEYS[1] is the entry, KEYS[2..] its tags; a tag without a token gets ARGV[1].
_GET_WITH_GENERATIONS = """
local result = {redis.call('GET', KEYS[1]) or false}
for i = 2, #KEYS do
  local token = redis.call('GET', KEYS[i])
  if not token then
    redis.call('SET', KEYS[i], ARGV[1], 'EX', ARGV[2])
    token = ARGV[1]
  end
  result[i] = token
end
return result
"""

log = structlog.get_logger(__name__)
Loader = Callable[[], Awaitable[Any]]
_live_caches: weakref.WeakSet[TwoLevelCache] = weakref.WeakSet()


class Follower(Protocol):
    """Something holding data derived from cached values (``core/edge.EdgeCache``), dropped with
    this process's local entries."""

    def drop_local(self, tags: Iterable[str]) -> None:
        """Forget what carries any of ``tags``."""

    def clear_local(self) -> None:
        """Forget everything."""


@dataclass
class _LocalEntry:
    value: Any
    expires_at: float
    tags: tuple[str, ...]


class LocalEntries:
    """A process's bounded LRU of short-lived values indexed by cache tag, dropped by tag.

    ``epoch`` changes on every drop: a value produced while a drop happened may predate it, so
    ``remember`` refuses it when given the epoch read before producing it.
    """

    def __init__(self, *, local_ttl: float, local_max_entries: int) -> None:
        self.local_ttl = local_ttl
        self.local_max_entries = local_max_entries
        self._local: OrderedDict[str, _LocalEntry] = OrderedDict()
        self._keys_by_tag: dict[str, set[str]] = {}
        self._epoch = 0

    @property
    def epoch(self) -> int:
        """Changes whenever entries are dropped."""
        return self._epoch

    def fresh(self, key: str) -> _LocalEntry | None:
        """The unexpired entry of ``key``, if any (marked recently used)."""
        entry = self._local.get(key)
        if entry is None or entry.expires_at <= time.monotonic():
            return None
        self._local.move_to_end(key)
        return entry

    def drop_local(self, tags: Iterable[str]) -> None:
        """Forget the entries carrying any of ``tags``."""
        self._epoch += 1
        for tag in tags:
            for key in self._keys_by_tag.pop(tag, ()):
                self._forget(key)

    def clear_local(self) -> None:
        """Forget every entry (when invalidation messages may have been missed)."""
        self._epoch += 1
        self._local.clear()
        self._keys_by_tag.clear()

    def remember(self, key: str, tags: tuple[str, ...], value: Any, epoch: int) -> None:
        """Keep ``value`` under ``key`` unless entries were dropped since ``epoch``."""
        if epoch != self._epoch:
            return  # an invalidation arrived while producing it: the value may predate it
        self._forget(key)
        self._local[key] = _LocalEntry(value, time.monotonic() + self.local_ttl, tags)
        for tag in tags:
            self._keys_by_tag.setdefault(tag, set()).add(key)
        while len(self._local) > self.local_max_entries:
            self._forget(next(iter(self._local)))

    def _forget(self, key: str) -> None:
        entry = self._local.pop(key, None)
        if entry is None:
            return
        for tag in entry.tags:
            keys = self._keys_by_tag.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._keys_by_tag[tag]


class TwoLevelCache(LocalEntries):
    """One process's cache: a bounded local LRU in front of Redis, with single-flight loads."""

    def __init__(
        self,
        redis: Redis,
        *,
        local_ttl: float = 30.0,
        local_max_entries: int = 10_000,
        redis_ttl: int = 600,
        subscriber: Redis | None = None,
        breaker: Breaker | None = None,
    ) -> None:
        self.redis = redis
        self.subscriber = subscriber or redis
        self.breaker = breaker or Breaker(cooldown=5.0)
        super().__init__(local_ttl=local_ttl, local_max_entries=local_max_entries)
        self.redis_ttl = redis_ttl
        self._flights: dict[str, asyncio.Future[Any]] = {}
        self._pubsub: PubSub = self.subscriber.pubsub(ignore_subscribe_messages=True)
        self._get_script = redis.register_script(_GET_WITH_GENERATIONS)
        self._followers: list[Follower] = []
        _live_caches.add(self)

    @classmethod
    def from_settings(
        cls, redis: Redis, settings: Settings, *, subscriber: Redis, breaker: Breaker
    ) -> TwoLevelCache:
        """A cache sized and timed by the ``AGORA_CACHE_*`` settings, listening on
        ``subscriber`` and skipping Redis while ``breaker`` is open."""
        return cls(
            redis,
            local_ttl=settings.cache_local_ttl,
            local_max_entries=settings.cache_local_max_entries,
            redis_ttl=settings.cache_redis_ttl,
            subscriber=subscriber,
            breaker=breaker,
        )

    async def get_or_load(self, key: str, tags: Sequence[str], loader: Loader) -> Any:
        """The value of ``key`` (JSON-ready), loaded by ``loader`` on a miss of both levels."""
        entry = self.fresh(key)
        if entry is not None:
            return entry.value
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(self._load(key, tuple(tags), loader))
            self._flights[key] = flight
            flight.add_done_callback(lambda _: self._flights.pop(key, None))
        return await asyncio.shield(flight)

    def follow(self, follower: Follower) -> None:
        """Drop ``follower``'s data whenever this process's local entries are dropped."""
        self._followers.append(follower)

    def drop_local(self, tags: Iterable[str]) -> None:
        """Forget this process's entries carrying any of ``tags``, and its followers' too."""
        tags = tuple(tags)
        super().drop_local(tags)
        for follower in self._followers:
            follower.drop_local(tags)

    def clear_local(self) -> None:
        """Forget every local entry (when invalidation messages may have been missed)."""
        super().clear_local()
        for follower in self._followers:
            follower.clear_local()

    @contextlib.asynccontextmanager
    async def invalidation_subscriber(self) -> AsyncIterator[None]:
        """Apply published invalidations to this process while the block runs (app lifespan).

        Subscribes before the block starts when Redis answers, else keeps trying in the
        background: the app starts either way.
        """
        subscribed = await self._subscribe()
        task = asyncio.create_task(self._listen(subscribed), name="cache-invalidation-subscriber")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _subscribe(self) -> bool:
        try:
            await self._pubsub.subscribe(CHANNEL)
        except (RedisError, OSError) as exc:
            log.warning("cache_subscription_lost", error=str(exc))
            return False
        return True

    async def _listen(self, subscribed: bool) -> None:
        while True:
            if not subscribed:
                await self._resubscribe()
            try:
                async for message in self._pubsub.listen():
                    self.drop_local(loads(message["data"]))
            except (RedisError, OSError) as exc:
                log.warning("cache_subscription_lost", error=str(exc))
                self.clear_local()
            subscribed = False

    async def _resubscribe(self) -> None:
        while True:
            await asyncio.sleep(_RESUBSCRIBE_DELAY_S)
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = self.subscriber.pubsub(ignore_subscribe_messages=True)
            if await self._subscribe():
                self.clear_local()  # what was published while we were away is lost
                return

    async def _load(self, key: str, tags: tuple[str, ...], loader: Loader) -> Any:
        epoch = self._epoch
        entry_key = _ENTRY_PREFIX + key
        if self.breaker.is_open:
            return await loader()
        try:
            reply = await self._get_script(
                keys=[entry_key, *(_TAG_PREFIX + tag for tag in tags)],
                args=[uuid.uuid4().hex, _TAG_TTL_S],
            )
        except RedisError as exc:
            self.breaker.trip()
            log.warning("cache_unavailable", error=str(exc))
            return await loader()
        stored, generations = reply[0], [token.decode() for token in reply[1:]]
        if stored is not None:
            stored_generations, value = loads(stored)
            if stored_generations == generations:
                self.remember(key, tags, value, epoch)
                return value
        value = await loader()
        try:
            await self.redis.set(entry_key, dumps([generations, value]), ex=self.redis_ttl)
        except RedisError:
            self.breaker.trip()
        self.remember(key, tags, value, epoch)
        return value


async def invalidate(redis: Redis, tags: Iterable[str]) -> None:
    """Invalidate ``tags`` everywhere now: new generations in Redis, a message to every process.

    Call it after the change has committed (or use ``invalidate_after_commit``).
    """
    unique = sorted(set(tags))
    if not unique:
        return
    token = uuid.uuid4().hex
    async with redis.pipeline(transaction=True) as pipe:
        for tag in unique:
            pipe.set(_TAG_PREFIX + tag, token, ex=_TAG_TTL_S)
        pipe.publish(CHANNEL, dumps(unique))
        await pipe.execute()
    for cache in list(_live_caches):
        if cache.redis is redis:
            cache.drop_local(unique)


def invalidate_after_commit(session: AsyncSession, redis: Redis, tags: Iterable[str]) -> None:
    """Invalidate ``tags`` once the session's transaction commits; nothing if it rolls back."""
    pending(session, _invalidate_committed).append((redis, tuple(tags)))


async def _invalidate_committed(invalidations: list[tuple[Redis, tuple[str, ...]]]) -> None:
    by_client: dict[int, tuple[Redis, set[str]]] = {}
    for redis, tags in invalidations:
        by_client.setdefault(id(redis), (redis, set()))[1].update(tags)
    for redis, unique in by_client.values():
        try:
            await invalidate(redis, unique)
        except RedisError as exc:
            log.error("cache_invalidation_failed", tags=sorted(unique), error=str(exc))
