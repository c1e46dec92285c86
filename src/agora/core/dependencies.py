"""Request-scoped dependencies shared by every router, as typed ``Annotated`` aliases.

Each dependency is ``async``: FastAPI runs a plain ``def`` dependency in a thread pool, a thread
hop per dependency per request for what is only an attribute read.

The session dependency is the request's unit of work: it commits once, after the endpoint
returns and before the response is sent, or rolls back if the endpoint raised.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.cache import TwoLevelCache
from agora.core.db import Database
from agora.core.ratelimit import RateLimiter
from agora.settings import Settings


@dataclass(frozen=True)
class AppServices:
    """What the app opened in its lifespan and every request may use."""

    settings: Settings
    database: Database
    redis: Redis
    rate_limiter: RateLimiter
    cache: TwoLevelCache


def app_services(request: Request) -> AppServices:
    """The services opened by the app's lifespan."""
    services: AppServices = request.app.state.services
    return services


async def _unit_of_work(request: Request) -> AsyncIterator[AsyncSession]:
    async with app_services(request).database.unit_of_work() as session:
        yield session


# Dependencies are coroutines: FastAPI runs a plain ``def`` dependency in a worker thread, a
# thread hop per request that costs more than what these functions do.
async def _services(request: Request) -> AppServices:
    return app_services(request)


async def _redis(request: Request) -> Redis:
    return app_services(request).redis


async def _settings(request: Request) -> Settings:
    return app_services(request).settings


async def _rate_limiter(request: Request) -> RateLimiter:
    return app_services(request).rate_limiter


async def _cache(request: Request) -> TwoLevelCache:
    return app_services(request).cache


SessionDep = Annotated[AsyncSession, Depends(_unit_of_work, scope="function")]
RedisDep = Annotated[Redis, Depends(_redis)]
SettingsDep = Annotated[Settings, Depends(_settings)]
ServicesDep = Annotated[AppServices, Depends(_services)]
RateLimiterDep = Annotated[RateLimiter, Depends(_rate_limiter)]
CacheDep = Annotated[TwoLevelCache, Depends(_cache)]
