"""The shared rate limiter and the default per-client budget of the API."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from agora.app import create_app
from agora.core.errors import RateLimited
from agora.core.ratelimit import RateLimiter, limits_storage_uri, rate_limit
from agora.core.security import Role, issue_access_token
from agora.settings import Settings


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://localhost:6379/0", "async+redis://localhost:6379/0"),
        ("rediss://:secret@cache:6380/1", "async+rediss://:secret@cache:6380/1"),
        ("unix:///run/redis.sock?db=0", "async+redis+unix:///run/redis.sock?db=0"),
    ],
)
def test_redis_urls_become_limits_storage_uris(url: str, expected: str) -> None:
    assert limits_storage_uri(url) == expected


def test_an_unknown_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        limits_storage_uri("memcached://localhost")


async def test_a_limiter_on_its_own_spends_per_identity(settings: Settings, redis: Redis) -> None:
    assert settings.redis_url is not None
    limiter = RateLimiter(settings.redis_url, connection_pool=redis.connection_pool)
    purchase = rate_limit("purchase-buyer", "2/second")
    await limiter.enforce(purchase, "buyer-1")
    await limiter.enforce(purchase, "buyer-1")
    with pytest.raises(RateLimited) as refused:
        await limiter.enforce(purchase, "buyer-1")
    assert refused.value.headers["RateLimit-Policy"] == '"purchase-buyer";q=2;w=1'
    await limiter.enforce(purchase, "buyer-2")


@pytest.fixture
async def budget_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """An app whose default budget is 3 requests a minute per client."""
    application = create_app(settings.model_copy(update={"rate_limit_default": "3/minute"}))
    async with application.router.lifespan_context(application):
        yield application


def _client(app: FastAPI, ip: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_the_api_has_a_default_budget_per_address(budget_app: FastAPI) -> None:
    async with (
        _client(budget_app, "203.0.113.1") as client,
        _client(budget_app, "203.0.113.2") as other,
    ):
        statuses = [(await client.get("/api/v1/me")).status_code for _ in range(4)]
        assert statuses == [401, 401, 401, 429]
        refused = await client.get("/api/v1/me")
        assert refused.headers["retry-after"]
        assert refused.headers["ratelimit-policy"] == '"default";q=3;w=60'
        assert refused.headers["content-type"] == "application/problem+json"
        assert (await other.get("/api/v1/me")).status_code == 401
        assert (await client.get("/healthz")).status_code == 200


async def test_the_default_budget_follows_the_user_not_the_address(
    budget_app: FastAPI, settings: Settings
) -> None:
    token = issue_access_token(settings, uuid.uuid4(), Role.CUSTOMER)
    headers = {"Authorization": f"Bearer {token}"}
    async with _client(budget_app, "203.0.113.1") as one, _client(budget_app, "203.0.113.2") as two:
        statuses = [
            (await (one, two)[attempt % 2].get("/api/v1/me", headers=headers)).status_code
            for attempt in range(4)
        ]
        assert statuses[-1] == 429
        assert (await one.get("/api/v1/me")).status_code == 401
