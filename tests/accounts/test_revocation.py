"""Access tokens end before they expire: logout, a password change, a role change and disabling
the account revoke every access token issued before, on every endpoint (token epochs in Redis)."""

from __future__ import annotations

import uuid

import httpx

from tests.accounts.flows import API, PASSWORD, bearer, register, tokens


def _assert_revoked(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "token_revoked"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def _calls(client: httpx.AsyncClient, access_token: str) -> list[httpx.Response]:
    """The same token on endpoints that read only its claims, the account, or Redis alone."""
    headers = bearer(access_token)
    return [
        await client.get(f"{API}/orders", headers=headers),
        await client.get(f"{API}/me", headers=headers),
        await client.post(
            f"{API}/flash-sales/{uuid.uuid4()}/purchase", json={"quantity": 1}, headers=headers
        ),
    ]


async def test_logout_revokes_access_tokens_on_every_endpoint(client: httpx.AsyncClient) -> None:
    await register(client, "leaving@example.com")
    session = await tokens(client, "leaving@example.com")
    other_device = await tokens(client, "leaving@example.com")
    before = await _calls(client, session["access_token"])
    assert [response.status_code for response in before] == [200, 200, 404]

    logout = await client.post(
        f"{API}/auth/logout", json={"refresh_token": session["refresh_token"]}
    )
    assert logout.status_code == 204

    for response in await _calls(client, session["access_token"]):
        _assert_revoked(response)
    for response in await _calls(client, other_device["access_token"]):
        _assert_revoked(response)
    # The other device's session lives on: a refresh gives it a token that works.
    refreshed = await client.post(
        f"{API}/auth/refresh", json={"refresh_token": other_device["refresh_token"]}
    )
    assert refreshed.status_code == 200
    after = await _calls(client, refreshed.json()["access_token"])
    assert [response.status_code for response in after] == [200, 200, 404]
    # A stale refresh token cannot log anyone out again.
    await client.post(f"{API}/auth/logout", json={"refresh_token": session["refresh_token"]})
    again = await client.get(f"{API}/orders", headers=bearer(refreshed.json()["access_token"]))
    assert again.status_code == 200


async def test_a_password_change_revokes_older_access_tokens(client: httpx.AsyncClient) -> None:
    await register(client, "careful@example.com")
    old = await tokens(client, "careful@example.com")

    changed = await client.post(
        f"{API}/me/password",
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
        headers=bearer(old["access_token"]),
    )
    assert changed.status_code == 200

    _assert_revoked(await client.get(f"{API}/orders", headers=bearer(old["access_token"])))
    fresh = bearer(changed.json()["access_token"])
    assert (await client.get(f"{API}/orders", headers=fresh)).status_code == 200


async def test_role_change_and_disabling_revoke_access_tokens(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    user = await register(client, "promoted@example.com")
    before_promotion = await tokens(client, "promoted@example.com")

    promoted = await client.patch(
        f"{API}/users/{user['id']}", json={"role": "staff"}, headers=admin_headers
    )
    assert promoted.status_code == 200
    _assert_revoked(
        await client.get(f"{API}/orders", headers=bearer(before_promotion["access_token"]))
    )
    as_staff = await client.post(
        f"{API}/auth/refresh", json={"refresh_token": before_promotion["refresh_token"]}
    )
    assert as_staff.status_code == 200
    staff_token = as_staff.json()["access_token"]
    assert (await client.get(f"{API}/orders", headers=bearer(staff_token))).status_code == 200

    disabled = await client.patch(
        f"{API}/users/{user['id']}", json={"is_active": False}, headers=admin_headers
    )
    assert disabled.status_code == 200
    _assert_revoked(await client.get(f"{API}/orders", headers=bearer(staff_token)))
