"""Rate limits kept in Redis, so every API process spends from the same budgets.

A ``RateLimit`` is a named budget (``"login-ip"``, ``10/minute``); ``RateLimiter.enforce`` spends
one unit of it for an identity (an IP, an account, a buyer) and raises ``RateLimited`` when it is
spent, with ``Retry-After`` and the IETF draft ``RateLimit-Policy`` / ``RateLimit`` headers.
Counting uses the sliding-window-counter strategy of ``limits``: one atomic Lua call per hit.
``DefaultBudgetMiddleware`` applies the default per-client budget to the whole API.

When Redis cannot be reached the limiter lets requests through (and logs it): a throttle that
fails closed would turn a Redis hiccup into a full outage.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from typing import Any

import structlog
from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from agora.core.errors import RateLimited, Unauthorized, error_response
from agora.core.security import decode_access_token
from agora.settings import Settings

KEY_PREFIX = "agora:ratelimit"
_ASYNC_SCHEMES = {"redis": "async+redis", "rediss": "async+rediss", "unix": "async+redis+unix"}
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RateLimit:
    """A named budget: at most ``quota`` hits in any ``window`` seconds."""

    name: str
    item: RateLimitItem

    @property
    def quota(self) -> int:
        """How many hits the window allows."""
        return self.item.amount

    @property
    def window(self) -> int:
        """The window's length in seconds."""
        return self.item.get_expiry()

    @property
    def policy_header(self) -> str:
        """This policy as an item of the ``RateLimit-Policy`` header."""
        return f'"{self.name}";q={self.quota};w={self.window}'


@functools.cache
def rate_limit(name: str, spec: str) -> RateLimit:
    """The budget ``name`` from a setting such as ``"10/minute"`` (parsed once)."""
    return RateLimit(name=name, item=parse(spec))


def limits_storage_uri(redis_url: str) -> str:
    """Our Redis URL (``redis://``, ``rediss://``, ``unix://``) in the form ``limits`` wants."""
    scheme, separator, rest = redis_url.partition("://")
    if not separator or scheme not in _ASYNC_SCHEMES:
        raise ValueError(f"unsupported Redis URL for rate limits: {redis_url!r}")
    return f"{_ASYNC_SCHEMES[scheme]}://{rest}"


class RateLimiter:
    """Spends rate-limit budgets kept in Redis."""

    def __init__(self, redis_url: str, **redis_options: Any) -> None:
        """Count in the Redis at ``redis_url``; ``connection_pool=`` shares the app's pool."""
        storage = RedisStorage(
            limits_storage_uri(redis_url),
            wrap_exceptions=True,
            implementation="redispy",
            key_prefix=KEY_PREFIX,
            **redis_options,
        )
        self._strategy = SlidingWindowCounterRateLimiter(storage)

    async def enforce(self, limit: RateLimit, identity: str, *, cost: int = 1) -> None:
        """Spend ``cost`` of ``identity``'s budget; ``RateLimited`` (429) if it is spent."""
        try:
            if await self._strategy.hit(limit.item, limit.name, identity, cost=cost):
                return
            stats = await self._strategy.get_window_stats(limit.item, limit.name, identity)
        except StorageError:
            log.warning("rate_limit_storage_unreachable", policy=limit.name)
            return
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(
            "Too many requests; retry later.",
            headers={
                "Retry-After": str(retry_after),
                "RateLimit-Policy": limit.policy_header,
                "RateLimit": f'"{limit.name}";r={stats.remaining};t={retry_after}',
            },
            policy=limit.name,
        )


def client_ip(connection: HTTPConnection) -> str:
    """The caller's address (uvicorn resolves ``X-Forwarded-For`` from trusted proxies)."""
    return connection.client.host if connection.client else "unknown"


def client_identity(connection: HTTPConnection, settings: Settings) -> str:
    """Who spends the default budget: the user of a valid bearer token, else the address."""
    authorization = connection.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token:
        try:
            return f"user:{decode_access_token(settings, token).user_id}"
        except Unauthorized:
            pass
    return f"ip:{client_ip(connection)}"


class DefaultBudgetMiddleware:
    """Spends one unit of the caller's default budget per API request (pure ASGI)."""

    def __init__(self, app: ASGIApp, *, settings: Settings, path_prefix: str) -> None:
        self.app = app
        self.settings = settings
        self.path_prefix = path_prefix
        self.limit = rate_limit("default", settings.rate_limit_default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.path_prefix):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        limiter: RateLimiter = scope["app"].state.services.rate_limiter
        try:
            await limiter.enforce(self.limit, client_identity(connection, self.settings))
        except RateLimited as refusal:
            await error_response(refusal, scope["path"])(scope, receive, send)
            return
        await self.app(scope, receive, send)
