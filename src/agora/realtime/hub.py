"""The event hub of one API process: one Redis subscription, fanned out to local sockets.

The outbox relay publishes each event on its owner's channel (``agora:events:user:<id>``) and on
the ops channel. Every API process holds one pattern subscription to ``agora:events:*`` and hands
each message to the sockets of that channel's audience in this process, so a buyer's socket gets
its events whichever process it is connected to, and only its own: the audience is the channel,
fixed by the relay from the event's owner, never by anything the client sends.

Pub/sub delivers to whoever listens at that moment: a socket that was not connected (or a process
whose subscription was being re-established) misses events, and the client re-reads
``GET /orders`` after reconnecting. A socket that cannot keep up (its queue fills) is closed rather
than letting it hold memory without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from agora.core.outbox import CHANNEL_PREFIX, OPS_CHANNEL, user_channel

OPS_AUDIENCE = OPS_CHANNEL.removeprefix(CHANNEL_PREFIX)
QUEUE_SIZE = 256
_RETRY_DELAY_S = 1.0
log = structlog.get_logger(__name__)


def user_audience(user_id: object) -> str:
    """The audience of one user's events."""
    return user_channel(str(user_id)).removeprefix(CHANNEL_PREFIX)


@dataclass(eq=False)
class Subscription:
    """Messages for one socket, and whether it fell too far behind to continue."""

    queue: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, message: bytes) -> None:
        """Queue a message, or mark the subscription overflowed when its queue is full."""
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.overflowed.set()

    async def next(self) -> bytes | None:
        """The next message, or None once the subscription overflowed."""
        if self.overflowed.is_set():
            return None
        getting = asyncio.ensure_future(self.queue.get())
        overflowing = asyncio.ensure_future(self.overflowed.wait())
        done, pending = await asyncio.wait(
            {getting, overflowing}, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        return getting.result() if getting in done else None


class EventHub:
    """Routes pub/sub messages to the subscriptions of their audience in this process."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._audiences: dict[str, set[Subscription]] = {}
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribe to every event channel; returns once Redis has confirmed it."""
        subscribed = asyncio.Event()
        self._listener = asyncio.create_task(self._listen(subscribed))
        await subscribed.wait()

    async def stop(self) -> None:
        """Stop listening."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener

    @contextlib.contextmanager
    def subscribe(self, audience: str) -> Iterator[Subscription]:
        """A subscription to ``audience`` for the life of the block."""
        subscription = Subscription()
        self._audiences.setdefault(audience, set()).add(subscription)
        try:
            yield subscription
        finally:
            subscribers = self._audiences[audience]
            subscribers.discard(subscription)
            if not subscribers:
                del self._audiences[audience]

    def dispatch(self, channel: str, message: bytes) -> None:
        """Hand a message published on ``channel`` to the subscriptions of its audience."""
        for subscription in self._audiences.get(channel.removeprefix(CHANNEL_PREFIX), ()):
            subscription.offer(message)

    async def _listen(self, subscribed: asyncio.Event) -> None:
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.psubscribe(CHANNEL_PREFIX + "*")
                    async for message in pubsub.listen():
                        if message["type"] == "psubscribe":
                            subscribed.set()
                        elif message["type"] == "pmessage":
                            self.dispatch(message["channel"].decode(), message["data"])
            except (RedisError, OSError):
                log.warning("event_hub_reconnecting", exc_info=True)
                await asyncio.sleep(_RETRY_DELAY_S)
