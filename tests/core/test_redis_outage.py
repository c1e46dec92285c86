"""A real API on a Redis server of the test's own, which the test stops or freezes (SIGSTOP):
required Redis answers 503 with ``Retry-After``, optional Redis is skipped, nothing hangs, the
API starts without Redis and is ready once Redis answers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from agora.core.db import Database
from agora.settings import Settings
from tests.accounts.flows import API, PASSWORD
from tests.factories import Account, create_user
from tests.support import ApiProcess, RedisServer, assert_temporarily_unavailable, wait_for

# Generous: a hang is what fails; a request answered within this is fine whatever it took.
CLIENT_TIMEOUT_S = 60


@pytest.fixture
async def buyer(database: Database, settings: Settings) -> Account:
    """A buyer with a valid token."""
    return await create_user(database, settings)


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis server only this test uses (not started yet)."""
    server = RedisServer()
    yield server
    server.stop()


async def _assert_degraded(http: httpx.AsyncClient, buyer: Account) -> None:
    """Where Redis is required: 503; where it is optional: served from PostgreSQL."""
    sale = f"{API}/flash-sales/{uuid.uuid4()}"
    required = [
        http.post(f"{sale}/purchase", json={"quantity": 1}, headers=buyer.headers),
        http.get(sale),
        http.get(f"{sale}/tickets/{uuid.uuid4()}", headers=buyer.headers),
        http.post(f"{API}/auth/token", data={"username": "a@example.com", "password": "guess"}),
        http.post(f"{API}/auth/register", json={"email": "b@example.com", "password": PASSWORD}),
    ]
    for response in await asyncio.gather(*required):
        assert_temporarily_unavailable(response, 5)
    optional = [
        http.get(f"{API}/products"),
        http.get(f"{API}/categories"),
        http.get(f"{API}/orders", headers=buyer.headers),
    ]
    for response in await asyncio.gather(*optional):
        assert response.status_code == 200, response.text
    readiness = await http.get("/readyz")
    assert readiness.status_code == 503
    assert readiness.json()["checks"] == {"database": "ok", "redis": "unreachable"}


async def _assert_recovered(http: httpx.AsyncClient) -> None:
    async def ready() -> bool:
        return (await http.get("/readyz")).status_code == 200

    await wait_for(ready, timeout=30)
    login = await http.post(
        f"{API}/auth/token", data={"username": "a@example.com", "password": "guess"}
    )
    assert login.status_code == 401
    assert (await http.get(f"{API}/flash-sales/{uuid.uuid4()}")).status_code == 404


@pytest.mark.timeout(240)
async def test_the_api_starts_without_redis_and_is_ready_once_it_answers(
    api_server: Callable[..., ApiProcess], own_redis: RedisServer, buyer: Account
) -> None:
    server = await asyncio.to_thread(api_server, AGORA_REDIS_URL=own_redis.url)

    async with httpx.AsyncClient(base_url=server.base_url, timeout=CLIENT_TIMEOUT_S) as http:
        await _assert_degraded(http, buyer)
        await asyncio.to_thread(own_redis.start)
        await _assert_recovered(http)


@pytest.mark.timeout(240)
async def test_a_frozen_redis_degrades_requests_instead_of_hanging_them(
    api_server: Callable[..., ApiProcess], own_redis: RedisServer, buyer: Account
) -> None:
    own_redis.start()
    server = await asyncio.to_thread(api_server, AGORA_REDIS_URL=own_redis.url)

    async with httpx.AsyncClient(base_url=server.base_url, timeout=CLIENT_TIMEOUT_S) as http:
        assert (await http.get("/readyz")).status_code == 200
        own_redis.freeze()
        await _assert_degraded(http, buyer)
        own_redis.thaw()
        await _assert_recovered(http)
