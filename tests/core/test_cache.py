"""The two-level cache: single flight, generations against stale writes, pub/sub invalidation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from agora.core.cache import TwoLevelCache, invalidate
from agora.core.embedded import ServiceUrls
from tests.support import wait_for


@pytest.fixture
async def other_redis(service_urls: ServiceUrls) -> AsyncIterator[Redis]:
    """A second Redis client, standing for another process."""
    client = Redis.from_url(service_urls.redis_url)
    yield client
    await client.aclose()


async def test_a_miss_is_loaded_once_for_concurrent_readers(redis: Redis) -> None:
    cache = TwoLevelCache(redis)
    calls = 0
    release = asyncio.Event()

    async def slow_loader() -> dict[str, int]:
        nonlocal calls
        calls += 1
        await release.wait()
        return {"value": 42}

    readers = [asyncio.create_task(cache.get_or_load("k", ["t"], slow_loader)) for _ in range(50)]
    await asyncio.sleep(0.05)
    release.set()
    assert await asyncio.gather(*readers) == [{"value": 42}] * 50
    assert calls == 1


async def test_values_come_from_redis_in_another_process(redis: Redis, other_redis: Redis) -> None:
    first, second = TwoLevelCache(redis), TwoLevelCache(other_redis)

    async def loader() -> str:
        return "loaded once"

    async def never() -> str:
        raise AssertionError("should have come from Redis")

    assert await first.get_or_load("shared", ["t"], loader) == "loaded once"
    assert await second.get_or_load("shared", ["t"], never) == "loaded once"


async def test_a_load_that_started_before_an_invalidation_is_never_served(redis: Redis) -> None:
    cache = TwoLevelCache(redis)
    started, release = asyncio.Event(), asyncio.Event()

    async def stale_loader() -> str:
        started.set()
        await release.wait()
        return "old"

    pending = asyncio.create_task(cache.get_or_load("k", ["t"], stale_loader))
    await started.wait()
    await invalidate(redis, ["t"])  # the write commits while the old value is being loaded
    release.set()
    assert await pending == "old"

    async def fresh_loader() -> str:
        return "new"

    assert await TwoLevelCache(redis).get_or_load("k", ["t"], fresh_loader) == "new"
    assert await cache.get_or_load("k", ["t"], fresh_loader) == "new"


async def test_invalidation_reaches_the_local_level_of_other_processes(
    redis: Redis, other_redis: Redis
) -> None:
    reader = TwoLevelCache(other_redis, local_ttl=3600)
    value = "v1"

    async def loader() -> str:
        return value

    async with reader.invalidation_subscriber():
        assert await reader.get_or_load("k", ["product:1"], loader) == "v1"
        value = "v2"
        assert await reader.get_or_load("k", ["product:1"], loader) == "v1"  # local hit
        await invalidate(redis, ["product:1"])

        async def sees_new_value() -> bool:
            return await reader.get_or_load("k", ["product:1"], loader) == "v2"

        await wait_for(sees_new_value)


async def test_invalidating_one_tag_keeps_the_others(redis: Redis) -> None:
    cache = TwoLevelCache(redis)
    loads = {"a": 0, "b": 0}

    def counting(key: str):  # type: ignore[no-untyped-def]
        async def loader() -> str:
            loads[key] += 1
            return key

        return loader

    await cache.get_or_load("a", ["tag:a"], counting("a"))
    await cache.get_or_load("b", ["tag:b"], counting("b"))
    await invalidate(redis, ["tag:a"])  # same client: the local level is dropped at once
    await cache.get_or_load("a", ["tag:a"], counting("a"))
    await cache.get_or_load("b", ["tag:b"], counting("b"))
    assert loads == {"a": 2, "b": 1}


async def test_the_local_level_is_bounded(redis: Redis) -> None:
    cache = TwoLevelCache(redis, local_max_entries=3)

    async def loader() -> int:
        return 1

    for n in range(10):
        await cache.get_or_load(f"k{n}", [f"t{n}"], loader)
    assert len(cache._local) == 3
    assert len(cache._keys_by_tag) == 3
