"""The event hub routes each channel to its audience only, and drops sockets that fall behind."""

from __future__ import annotations

import uuid

from redis.asyncio import Redis

from agora.core.outbox import OPS_CHANNEL, user_channel
from agora.realtime.hub import OPS_AUDIENCE, QUEUE_SIZE, EventHub, user_audience


async def test_messages_reach_only_their_audience(redis: Redis) -> None:
    hub = EventHub(redis)
    alice, bob = uuid.uuid4(), uuid.uuid4()
    with (
        hub.subscribe(user_audience(alice)) as alice_subscription,
        hub.subscribe(user_audience(bob)) as bob_subscription,
        hub.subscribe(OPS_AUDIENCE) as ops_subscription,
    ):
        hub.dispatch(user_channel(alice), b"for alice")
        hub.dispatch(OPS_CHANNEL, b"for staff")

        assert await alice_subscription.next() == b"for alice"
        assert await ops_subscription.next() == b"for staff"
        assert alice_subscription.queue.empty()
        assert bob_subscription.queue.empty()


async def test_a_subscription_that_falls_behind_ends(redis: Redis) -> None:
    hub = EventHub(redis)
    audience = user_audience(uuid.uuid4())
    with hub.subscribe(audience) as subscription:
        for number in range(QUEUE_SIZE + 1):
            hub.dispatch(user_channel(audience.removeprefix("user:")), str(number).encode())

        assert await subscription.next() is None
