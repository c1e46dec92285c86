"""Concurrent refreshes with one token, against a real multi-process server: exactly one wins."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from tests.accounts.flows import API, register, tokens
from tests.support import ApiProcess

CONCURRENT_REFRESHES = 12


async def test_concurrent_refreshes_with_one_token_have_exactly_one_winner(
    api_server: Callable[..., ApiProcess],
) -> None:
    base_url = (await asyncio.to_thread(api_server, workers=2)).base_url
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as setup:
        await register(setup, "race@example.com")
        issued = await tokens(setup, "race@example.com")

    async def refresh_once() -> httpx.Response:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as own_client:
            return await own_client.post(
                f"{API}/auth/refresh", json={"refresh_token": issued["refresh_token"]}
            )

    answers = await asyncio.gather(*(refresh_once() for _ in range(CONCURRENT_REFRESHES)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] + [401] * (CONCURRENT_REFRESHES - 1)
    losers = [answer.json()["code"] for answer in answers if answer.status_code == 401]
    assert set(losers) == {"refresh_token_reused"}

    # The replays revoked the session, including the pair the winner received.
    winner = next(answer for answer in answers if answer.status_code == 200).json()
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as after:
        again = await after.post(
            f"{API}/auth/refresh", json={"refresh_token": winner["refresh_token"]}
        )
    assert again.status_code == 401
