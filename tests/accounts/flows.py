"""Steps shared by the accounts tests: register, log in, call with a bearer token."""

from __future__ import annotations

from typing import Any

import httpx

API = "/api/v1"
PASSWORD = "correct horse battery staple"


async def register(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, **extra: Any
) -> dict[str, Any]:
    """Register an account and return it."""
    response = await client.post(
        f"{API}/auth/register", json={"email": email, "password": password, **extra}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    """Attempt the OAuth2 password login."""
    return await client.post(f"{API}/auth/token", data={"username": email, "password": password})


async def tokens(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    """Log in and return the token response."""
    response = await login(client, email, password)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(access_token: str) -> dict[str, str]:
    """The Authorization header for an access token."""
    return {"Authorization": f"Bearer {access_token}"}
