"""The shared rate limiter and the default per-client budget of the API."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from agora.app import create_app
from agora.core.errors import RateLimited
from agora.core.ratelimit import RateLimiter, rate_limit
from agora.core.security import Role, issue_access_token
from agora.settings import Settings
from tests.support import in_process_client


async def test_a_limiter_on_its_own_spends_per_identity(redis: Redis) -> None:
    limiter = RateLimiter(redis)
    purchase = rate_limit("purchase-buyer", "2/second")
    await limiter.enforce(purchase, "buyer-1")
    await limiter.enforce(purchase, "buyer-1")
    with pytest.raises(RateLimited) as refused:
        await limiter.enforce(purchase, "buyer-1")
    assert refused.value.headers["RateLimit-Policy"] == '"purchase-buyer";q=2;w=1'
    assert refused.value.headers["RateLimit"] == '"purchase-buyer";r=0;t=1'
    await limiter.enforce(purchase, "buyer-2")


async def test_several_budgets_are_spent_in_order_and_the_first_refusal_answers(
    redis: Redis,
) -> None:
    limiter = RateLimiter(redis)
    broad, narrow = rate_limit("broad", "10/minute"), rate_limit("narrow", "1/minute")
    await limiter.enforce_all([(broad, "client"), (narrow, "buyer")])
    with pytest.raises(RateLimited) as refused:
        await limiter.enforce_all([(broad, "client"), (narrow, "buyer")])
    assert refused.value.headers["RateLimit-Policy"] == '"narrow";q=1;w=60'
    assert 1 <= int(refused.value.headers["Retry-After"]) <= 60
    # The broad budget paid for both requests, as two separate calls would have had it pay.
    for _ in range(8):
        await limiter.enforce(broad, "client")
    with pytest.raises(RateLimited) as exhausted:
        await limiter.enforce(broad, "client")
    assert exhausted.value.headers["RateLimit"].startswith('"broad";r=0;t=')


async def test_counts_are_kept_where_the_limits_library_keeps_them(redis: Redis) -> None:
    limit = rate_limit("login", "5/minute")
    await RateLimiter(redis).enforce(limit, "ip:203.0.113.9")
    previous, current = limit.keys("ip:203.0.113.9")
    assert current == "agora:ratelimit:{LIMITER/login/ip:203.0.113.9/5/1/minute}"
    assert previous == current + "/-1"
    assert await redis.get(current) == b"1"


@pytest.fixture
async def budget_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """An app whose default budget is 3 requests a minute per client."""
    application = create_app(settings.model_copy(update={"rate_limit_default": "3/minute"}))
    async with application.router.lifespan_context(application):
        yield application


async def test_the_api_has_a_default_budget_per_address(budget_app: FastAPI) -> None:
    async with (
        in_process_client(budget_app, ip="203.0.113.1") as client,
        in_process_client(budget_app, ip="203.0.113.2") as other,
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
    async with (
        in_process_client(budget_app, ip="203.0.113.1") as one,
        in_process_client(budget_app, ip="203.0.113.2") as two,
    ):
        statuses = [
            (await (one, two)[attempt % 2].get("/api/v1/me", headers=headers)).status_code
            for attempt in range(4)
        ]
        assert statuses[-1] == 429
        assert (await one.get("/api/v1/me")).status_code == 401


async def test_a_budget_is_spent_after_redis_forgot_its_script(redis: Redis) -> None:
    limiter = RateLimiter(redis)
    limit = rate_limit("after-flush", "2/minute")
    await limiter.enforce(limit, "client")
    await redis.script_flush()
    await limiter.enforce(limit, "client")  # the script loaded again, the budget spent
    with pytest.raises(RateLimited):
        await limiter.enforce(limit, "client")
    assert await redis.get(limit.keys("client")[1]) == b"2"
