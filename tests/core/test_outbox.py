"""The outbox: events exist only if their transaction committed, and are relayed once each."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from agora.core.db import Database
from agora.core.outbox import OPS_CHANNEL, OutboxEvent, record_event, relay_pending, user_channel
from agora.core.serialization import loads


class Rollback(Exception):
    """Aborts a unit of work."""


async def _subscribed(redis: Redis, *channels: str) -> Any:
    """A pub/sub connection whose subscriptions the server has confirmed."""
    pubsub = redis.pubsub()
    await pubsub.subscribe(*channels)
    for _ in channels:
        confirmation = await pubsub.get_message(timeout=5)
        assert confirmation is not None
        assert confirmation["type"] == "subscribe"
    return pubsub


async def _received(pubsub: Any) -> list[dict[str, Any]]:
    messages = []
    while message := await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2):
        messages.append(loads(message["data"]))
    return messages


async def _record_many(database: Database, topic: str, count: int) -> None:
    """``count`` events of ``topic`` committed in one transaction."""
    async with database.unit_of_work() as session:
        for number in range(count):
            record_event(session, topic, {"n": number})


async def _unrelayed(database: Database) -> int | None:
    async with database.unit_of_work() as session:
        return await session.scalar(select(func.count()).where(OutboxEvent.relayed_at.is_(None)))


async def test_committed_events_are_relayed_to_owner_and_ops_once(
    database: Database, redis: Redis
) -> None:
    owner = uuid.uuid4()
    pubsub = await _subscribed(redis, user_channel(owner), OPS_CHANNEL)
    async with database.unit_of_work() as session:
        record_event(session, "thing.happened", {"thing_id": owner}, user_id=owner)
        record_event(session, "ops.only", {"n": 1})

    async with database.unit_of_work() as session:
        assert await relay_pending(session, redis) == 2
    async with database.unit_of_work() as session:
        assert await relay_pending(session, redis) == 0

    messages = await _received(pubsub)
    await pubsub.aclose()
    assert sorted(m["topic"] for m in messages) == ["ops.only", "thing.happened", "thing.happened"]
    assert all(m["data"] in ({"thing_id": str(owner)}, {"n": 1}) for m in messages)
    assert await _unrelayed(database) == 0


async def test_rolled_back_events_do_not_exist(database: Database, redis: Redis) -> None:
    async def record_then_fail() -> None:
        async with database.unit_of_work() as session:
            record_event(session, "never", {})
            raise Rollback

    with pytest.raises(Rollback):
        await record_then_fail()
    async with database.unit_of_work() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxEvent)) == 0
        assert await relay_pending(session, redis) == 0


async def test_concurrent_relays_share_the_events_without_duplicates(
    database: Database, redis: Redis
) -> None:
    await _record_many(database, "bulk", 500)

    async def relay() -> int:
        async with database.unit_of_work() as session:
            return await relay_pending(session, redis)

    counts = await asyncio.gather(*(relay() for _ in range(4)))

    assert sum(counts) == 500


async def test_one_relay_drains_a_backlog_of_several_batches(
    database: Database, redis: Redis
) -> None:
    await _record_many(database, "backlog", 450)

    async with database.unit_of_work() as session:
        assert await relay_pending(session, redis) == 450

    assert await _unrelayed(database) == 0
