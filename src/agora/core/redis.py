"""The shared async Redis client (redis-py asyncio).

The pool blocks (up to ``POOL_TIMEOUT_S``) when all its connections are busy instead of failing
at once: under a burst such as a flash sale, redis-py's default pool raises "Too many
connections" as soon as more than 100 commands are in flight, which would turn a spike into
errors; waiting a few milliseconds for a connection is the right answer.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

MAX_CONNECTIONS = 256
POOL_TIMEOUT_S = 5


def create_redis(url: str) -> Redis:
    """A pooled client for ``url`` (``redis://``, ``rediss://`` or ``unix://``)."""
    pool = BlockingConnectionPool.from_url(
        url, health_check_interval=30, max_connections=MAX_CONNECTIONS, timeout=POOL_TIMEOUT_S
    )
    return Redis.from_pool(pool)
