"""Login and registration budgets, spent in Redis and so shared by every app process."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
import pytest

from agora.app import create_app
from agora.settings import Settings
from tests.accounts.flows import API, PASSWORD, login, register
from tests.support import in_process_client


class TwoApps:
    """Two independently started app instances, each with its own lifespan and clients."""

    def __init__(self, stack: AsyncExitStack, settings: Settings) -> None:
        self.stack = stack
        self.apps = [create_app(settings), create_app(settings)]

    async def start(self) -> None:
        """Run both lifespans."""
        for app in self.apps:
            await self.stack.enter_async_context(app.router.lifespan_context(app))

    async def client(self, index: int, ip: str = "203.0.113.7") -> httpx.AsyncClient:
        """A client of app ``index`` calling from ``ip``."""
        return await self.stack.enter_async_context(in_process_client(self.apps[index], ip=ip))


@pytest.fixture
async def two_apps(settings: Settings) -> AsyncIterator[TwoApps]:
    """Two app instances with tight password budgets (3 failures per account and address, 5 per
    address, 8 per account) and 2 registrations an hour."""
    tight = settings.model_copy(
        update={
            "rate_limit_login": "3/minute",
            "rate_limit_login_ip": "5/minute",
            "rate_limit_login_account": "8/minute",
            "rate_limit_register": "2/hour",
        }
    )
    async with AsyncExitStack() as stack:
        apps = TwoApps(stack, tight)
        await apps.start()
        yield apps


def _assert_limited(response: httpx.Response, policy: str, quota: int) -> None:
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "rate_limited"
    assert 1 <= int(response.headers["retry-after"]) <= 60 * 60
    assert re.fullmatch(rf'"{policy}";q={quota};w=\d+', response.headers["ratelimit-policy"])
    assert re.fullmatch(rf'"{policy}";r=0;t=\d+', response.headers["ratelimit"])


async def test_failures_on_one_account_from_one_address_are_shared_by_two_instances(
    two_apps: TwoApps,
) -> None:
    first, second = await two_apps.client(0), await two_apps.client(1)
    await register(first, "target@example.com")
    answers = [
        await login((first, second)[attempt % 2], "target@example.com", "wrong guess")
        for attempt in range(4)
    ]
    assert [answer.status_code for answer in answers] == [401, 401, 401, 429]
    _assert_limited(answers[-1], "login", 3)
    assert answers[-1].headers["ratelimit-policy"] == '"login";q=3;w=60'
    # The guessing address waits now, even with the right password, on either instance...
    assert (await login(first, "target@example.com")).status_code == 429
    # ...but the owner, elsewhere, is not locked out.
    owner = await two_apps.client(1, "192.0.2.44")
    assert (await login(owner, "target@example.com")).status_code == 200


async def test_successful_logins_spend_nothing(two_apps: TwoApps) -> None:
    client = await two_apps.client(0)
    await register(client, "often@example.com")
    for _ in range(6):
        assert (await login(client, "often@example.com")).status_code == 200
    answers = [await login(client, "often@example.com", "typo") for _ in range(4)]
    assert [answer.status_code for answer in answers] == [401, 401, 401, 429]


async def test_failures_from_one_address_are_limited_across_accounts(two_apps: TwoApps) -> None:
    first, second = await two_apps.client(0), await two_apps.client(1)
    answers = [
        await login((first, second)[attempt % 2], f"user{attempt}@example.com", PASSWORD)
        for attempt in range(6)
    ]
    assert [answer.status_code for answer in answers] == [401] * 5 + [429]
    _assert_limited(answers[-1], "login-ip", 5)


async def test_failures_on_one_account_from_many_addresses_meet_the_backstop(
    two_apps: TwoApps,
) -> None:
    await register(await two_apps.client(0), "victim@example.com")
    answers = [
        await login(
            await two_apps.client(attempt % 2, f"198.51.100.{attempt}"),
            "victim@example.com",
            "guess",
        )
        for attempt in range(9)
    ]
    assert [answer.status_code for answer in answers] == [401] * 8 + [429]
    _assert_limited(answers[-1], "login-account", 8)
    other_account = await login(await two_apps.client(0, "198.51.100.99"), "someone@example.com")
    assert other_account.status_code == 401


async def test_registration_is_limited_per_address(two_apps: TwoApps) -> None:
    first, second = await two_apps.client(0), await two_apps.client(1)
    await register(first, "one@example.com")
    await register(second, "two@example.com")
    third = await second.post(
        f"{API}/auth/register", json={"email": "three@example.com", "password": PASSWORD}
    )
    _assert_limited(third, "register-ip", 2)
    elsewhere = await two_apps.client(0, "192.0.2.1")
    await register(elsewhere, "three@example.com")
