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

The same connection listens to ``agora:token-revocations`` (``core/sessions.py``): when a user's
tokens are revoked (logout, password or role change, disabled account), every subscription
opened with an older token of that user ends at once, in every process.

Starting does not need Redis: the hub waits a moment for its subscription, then keeps trying in
the background, so the API starts (and reports not ready) while Redis is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from agora.core.outbox import CHANNEL_PREFIX, OPS_CHANNEL, user_channel
from agora.core.security import Principal
from agora.core.sessions import REVOCATIONS_CHANNEL, Revocation

OPS_AUDIENCE = OPS_CHANNEL.removeprefix(CHANNEL_PREFIX)
QUEUE_SIZE = 256
TRY_AGAIN_LATER = 1013
TOKEN_NO_LONGER_VALID = 4401
_RETRY_DELAY_S = 1.0
_START_WAIT_S = 2.0
log = structlog.get_logger(__name__)
_Key = TypeVar("_Key")


def user_audience(user_id: object) -> str:
    """The audience of one user's events."""
    return user_channel(str(user_id)).removeprefix(CHANNEL_PREFIX)


@dataclass(frozen=True)
class Ending:
    """Why a subscription ended: the WebSocket close code and reason to send."""

    code: int
    reason: str


FELL_BEHIND = Ending(TRY_AGAIN_LATER, "too slow: reconnect and resync")
TOKEN_REVOKED = Ending(TOKEN_NO_LONGER_VALID, "token revoked: log in again")


@dataclass(eq=False)
class Subscription:
    """Messages for one socket, and why it ended if it did (fell behind, token revoked)."""

    principal: Principal | None = None
    queue: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    ending: Ending | None = None

    def offer(self, message: bytes) -> None:
        """Queue a message, or end the subscription when its queue is full."""
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.end(FELL_BEHIND)

    def end(self, ending: Ending) -> None:
        """End the subscription (the first reason given is kept)."""
        if self.ending is None:
            self.ending = ending
        self.ended.set()

    async def next(self) -> bytes | None:
        """The next message, or None once the subscription ended."""
        if self.ended.is_set():
            return None
        getting = asyncio.ensure_future(self.queue.get())
        ending = asyncio.ensure_future(self.ended.wait())
        done, pending = await asyncio.wait({getting, ending}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return getting.result() if getting in done else None


class EventHub:
    """Routes pub/sub messages to the subscriptions of their audience in this process."""

    def __init__(self, redis: Redis) -> None:
        """Listen through ``redis``, a client without a read timeout (``create_subscriber``)."""
        self._redis = redis
        self._audiences: dict[str, set[Subscription]] = {}
        self._owners: dict[uuid.UUID, set[Subscription]] = {}
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribe to every event channel and to revocations; returns once Redis has
        confirmed it, or after a short wait while the subscription is retried in the background
        (Redis down)."""
        subscribed = asyncio.Event()
        self._listener = asyncio.create_task(self._listen(subscribed))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_START_WAIT_S):
                await subscribed.wait()

    async def stop(self) -> None:
        """Stop listening."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener

    @contextlib.contextmanager
    def subscribe(
        self, audience: str, principal: Principal | None = None
    ) -> Iterator[Subscription]:
        """A subscription to ``audience`` for the life of the block, ended early if the token of
        ``principal`` is revoked."""
        subscription = Subscription(principal)
        self._audiences.setdefault(audience, set()).add(subscription)
        if principal is not None:
            self._owners.setdefault(principal.user_id, set()).add(subscription)
        try:
            yield subscription
        finally:
            _discard(self._audiences, audience, subscription)
            if principal is not None:
                _discard(self._owners, principal.user_id, subscription)

    def dispatch(self, channel: str, message: bytes) -> None:
        """Hand a message published on ``channel`` to the subscriptions of its audience."""
        for subscription in self._audiences.get(channel.removeprefix(CHANNEL_PREFIX), ()):
            subscription.offer(message)

    def revoke(self, revocation: Revocation) -> None:
        """End the subscriptions opened with a token the revocation covers."""
        for subscription in self._owners.get(revocation.user_id, ()):
            assert subscription.principal is not None
            if subscription.principal.token_epoch < revocation.epoch:
                subscription.end(TOKEN_REVOKED)

    def _on_revocation(self, data: bytes) -> None:
        try:
            revocation = Revocation.from_message(data)
        except (ValueError, KeyError, TypeError):
            log.warning("malformed_token_revocation", data=data[:200])
            return
        self.revoke(revocation)

    async def _listen(self, subscribed: asyncio.Event) -> None:
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.psubscribe(CHANNEL_PREFIX + "*")
                    await pubsub.subscribe(REVOCATIONS_CHANNEL)
                    async for message in pubsub.listen():
                        if message["type"] == "subscribe":
                            subscribed.set()
                        elif message["type"] == "pmessage":
                            self.dispatch(message["channel"].decode(), message["data"])
                        elif message["type"] == "message":
                            self._on_revocation(message["data"])
            except (RedisError, OSError) as exc:
                # One line, no traceback: while Redis is down this repeats every second, and
                # rendering a traceback on the event loop would stall the requests it serves.
                log.warning("event_hub_reconnecting", error=str(exc))
                await asyncio.sleep(_RETRY_DELAY_S)


def _discard(index: dict[_Key, set[Subscription]], key: _Key, subscription: Subscription) -> None:
    subscribers = index[key]
    subscribers.discard(subscription)
    if not subscribers:
        del index[key]
