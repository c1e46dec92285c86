"""The shared async Redis clients (redis-py asyncio), and how Redis trouble is told apart.

Every command has a deadline: ``AGORA_REDIS_CONNECT_TIMEOUT`` to connect and
``AGORA_REDIS_SOCKET_TIMEOUT`` to answer. Without them a Redis that hangs (frozen, swapping, a
network path that drops packets) would hang every request waiting on it; with them the request
fails within the deadline, and the caller decides: required Redis answers 503, optional Redis
(the cache, the default budget) is skipped. A broken pooled connection (Redis restarted) is
retried once on a fresh one; a timeout is not retried, so a deadline is a deadline.

Pub/sub listeners wait for messages for as long as there are none, so they get a client of
their own without the read deadline.

The command pool blocks (up to ``POOL_TIMEOUT_S``) when all its connections are busy instead of
failing at once: under a burst such as a flash sale, redis-py's default pool raises "Too many
connections" as soon as more than 100 commands are in flight, which would turn a spike into
errors; waiting a few milliseconds for a connection is the right answer.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from agora.settings import Settings

MAX_CONNECTIONS = 256
SUBSCRIBER_CONNECTIONS = 8
POOL_TIMEOUT_S = 5

# What "Redis cannot be reached right now" looks like: refused, reset, timed out, still loading.
UNREACHABLE = (RedisConnectionError, RedisTimeoutError)


def create_redis(url: str, settings: Settings) -> Redis:
    """A pooled client for ``url`` (``redis://``, ``rediss://`` or ``unix://``) whose commands
    fail after the configured timeouts instead of waiting forever."""
    pool = BlockingConnectionPool.from_url(
        url,
        health_check_interval=30,
        max_connections=MAX_CONNECTIONS,
        timeout=POOL_TIMEOUT_S,
        socket_timeout=settings.redis_socket_timeout,
        socket_connect_timeout=settings.redis_connect_timeout,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    )
    return Redis.from_pool(pool)


def packed(*arguments: bytes | str | int) -> bytes:
    """A command in Redis's wire format (RESP), for ``send_packed``."""
    parts = [b"*%d\r\n" % len(arguments)]
    for argument in arguments:
        encoded = argument if isinstance(argument, bytes) else str(argument).encode()
        parts.append(b"$%d\r\n%b\r\n" % (len(encoded), encoded))
    return b"".join(parts)


async def send_packed(redis: Redis, command: bytes) -> Any:
    """The reply to ``command`` (packed once by the caller, ``packed``) on one of ``redis``'s
    pooled connections, with the same deadlines; an error reply is raised as redis-py raises it.

    For a hot call whose command is the same every time (a client's budget): through
    ``execute_command``, packing the arguments, the retry wrapper and the observability hooks
    cost redis-py about as much CPU as the round trip itself. A broken pooled connection is
    retried once on a fresh one, as ``create_redis``'s client does; a timeout is not.
    """
    pool = redis.connection_pool
    retried = False
    while True:
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            await connection.send_packed_command(command)
            return await connection.read_response()
        except RedisConnectionError:
            if retried:
                raise
            retried = True
        finally:
            await pool.release(connection)


@dataclass(frozen=True)
class LuaScript:
    """A Lua script and its SHA, hashed once per process rather than on every call: sent by
    SHA (``EVALSHA``), its source loaded only when Redis does not know it (``run``)."""

    source: bytes
    sha: str

    @classmethod
    def of(cls, source: bytes) -> LuaScript:
        """The script of ``source``."""
        return cls(source, hashlib.sha1(source, usedforsecurity=False).hexdigest())

    def command(self, keys: Sequence[str], args: Sequence[bytes | str | int]) -> bytes:
        """Its ``EVALSHA`` with these keys and arguments, packed (``packed``)."""
        return packed("EVALSHA", self.sha, len(keys), *keys, *args)

    async def run(
        self, redis: Redis, keys: Sequence[str], args: Sequence[bytes | str | int]
    ) -> Any:
        """Its reply for these keys and arguments (``run_script``)."""
        return await run_script(redis, self.command(keys, args), self.source)


async def run_script(redis: Redis, command: bytes, source: bytes) -> Any:
    """The reply to ``command``, an ``EVALSHA`` packed by the caller, loading the script's
    ``source`` first when Redis does not know it (restarted, flushed)."""
    try:
        return await send_packed(redis, command)
    except NoScriptError:
        await redis.script_load(source)
        return await send_packed(redis, command)


def create_subscriber(url: str, settings: Settings) -> Redis:
    """A client for pub/sub listeners: connecting has a deadline, waiting for a message not."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=SUBSCRIBER_CONNECTIONS,
        timeout=POOL_TIMEOUT_S,
        socket_timeout=None,
        socket_connect_timeout=settings.redis_connect_timeout,
    )
    return Redis.from_pool(pool)


class Breaker:
    """Remembers that Redis just failed, so that optional work skips it for ``cooldown`` seconds.

    Without it, a frozen Redis would cost every request a full socket timeout on each optional
    call (the default budget, the cache) before it fell back; with it, one request pays and the
    others skip Redis at once until the cooldown is over, when the next call tries again.
    """

    def __init__(self, cooldown: float) -> None:
        self.cooldown = cooldown
        self._skip_until = 0.0

    @property
    def is_open(self) -> bool:
        """Whether Redis failed less than ``cooldown`` seconds ago."""
        return time.monotonic() < self._skip_until

    def trip(self) -> None:
        """Record a failure: skip Redis for the next ``cooldown`` seconds."""
        self._skip_until = time.monotonic() + self.cooldown
