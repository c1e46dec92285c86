"""The client's address behind proxies, on real servers: ``X-Forwarded-For`` counts only when
the peer is named by ``AGORA_TRUSTED_PROXIES``, whatever uvicorn's ``FORWARDED_ALLOW_IPS`` says."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from tests.accounts.flows import API
from tests.support import ApiProcess


async def _bad_logins(
    server: ApiProcess, forwarded_for: list[str], *, accounts: int = 1
) -> list[int]:
    """One failed login per ``X-Forwarded-For`` value, on ``accounts`` accounts in turn; the
    statuses."""
    statuses = []
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        for attempt, address in enumerate(forwarded_for):
            response = await http.post(
                f"{API}/auth/token",
                data={"username": f"user{attempt % accounts}@example.com", "password": "a guess"},
                headers={"X-Forwarded-For": address},
            )
            statuses.append(response.status_code)
    return statuses


async def test_an_untrusted_peer_cannot_name_its_address(
    api_server: Callable[..., ApiProcess],
) -> None:
    # uvicorn alone would believe any peer with this; the API must not.
    server = await asyncio.to_thread(
        api_server, FORWARDED_ALLOW_IPS="*", AGORA_RATE_LIMIT_LOGIN_IP="10/minute"
    )
    addresses = [f"203.0.113.{attempt}" for attempt in range(30)]

    # A guesser spraying 30 accounts, naming a new address each time, is still one address.
    statuses = await _bad_logins(server, addresses, accounts=30)

    assert statuses == [401] * 10 + [429] * 20


async def test_a_trusted_proxy_names_the_client(api_server: Callable[..., ApiProcess]) -> None:
    server = await asyncio.to_thread(
        api_server, AGORA_TRUSTED_PROXIES="127.0.0.0/8", AGORA_RATE_LIMIT_LOGIN="3/minute"
    )

    one_client = await _bad_logins(server, ["198.51.100.1"] * 4)
    # A client's own claim before the proxy's entry is not believed: the proxy's entry counts.
    spoofing = await _bad_logins(server, ["192.0.2.9, 198.51.100.1"])
    another_client = await _bad_logins(server, ["198.51.100.2"])

    assert one_client == [401, 401, 401, 429]
    assert spoofing == [429]
    assert another_client == [401]
