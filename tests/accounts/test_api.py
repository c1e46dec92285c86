"""The accounts API end to end: register, log in, me, refresh, logout, password, roles."""

from __future__ import annotations

import uuid

import httpx
import pytest

from agora.core.security import Role, issue_access_token
from agora.settings import Settings
from tests.accounts.flows import API, PASSWORD, bearer, login, register, tokens


async def test_register_token_me_refresh_logout(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{API}/auth/register",
        json={"email": "Ada@Example.com", "password": PASSWORD, "full_name": "Ada Lovelace"},
    )
    assert response.status_code == 201
    user = response.json()
    assert user["email"] == "ada@example.com"
    assert user["role"] == "customer"
    assert "password" not in response.text
    assert response.headers["location"] == f"{API}/users/{user['id']}"

    issued = await tokens(client, "ada@example.com")
    assert issued["token_type"] == "bearer"
    assert issued["expires_in"] > 0

    me = await client.get(f"{API}/me", headers=bearer(issued["access_token"]))
    assert me.status_code == 200
    assert me.json()["id"] == user["id"]

    rotated = await client.post(
        f"{API}/auth/refresh", json={"refresh_token": issued["refresh_token"]}
    )
    assert rotated.status_code == 200
    assert rotated.headers["cache-control"] == "no-store"
    pair = rotated.json()
    assert pair["refresh_token"] != issued["refresh_token"]
    assert (await client.get(f"{API}/me", headers=bearer(pair["access_token"]))).status_code == 200

    logout = await client.post(f"{API}/auth/logout", json={"refresh_token": pair["refresh_token"]})
    assert logout.status_code == 204
    after = await client.post(f"{API}/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert after.status_code == 401
    assert after.json()["code"] == "invalid_refresh_token"


async def test_a_refresh_token_used_twice_revokes_its_family(client: httpx.AsyncClient) -> None:
    await register(client, "bob@example.com")
    first = await tokens(client, "bob@example.com")
    other_session = await tokens(client, "bob@example.com")
    second = (
        await client.post(f"{API}/auth/refresh", json={"refresh_token": first["refresh_token"]})
    ).json()

    replay = await client.post(
        f"{API}/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert replay.status_code == 401
    assert replay.json()["code"] == "refresh_token_reused"
    assert replay.headers["www-authenticate"] == "Bearer"

    descendant = await client.post(
        f"{API}/auth/refresh", json={"refresh_token": second["refresh_token"]}
    )
    assert descendant.status_code == 401
    untouched = await client.post(
        f"{API}/auth/refresh", json={"refresh_token": other_session["refresh_token"]}
    )
    assert untouched.status_code == 200


async def test_unknown_email_and_wrong_password_are_the_same_401(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "carol@example.com")
    wrong_password = await login(client, "carol@example.com", "not the password")
    unknown_email = await login(client, "nobody@example.com")
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.json()["code"] == unknown_email.json()["code"] == "invalid_credentials"
    assert wrong_password.json()["detail"] == unknown_email.json()["detail"]


async def test_duplicate_email_is_a_conflict_whatever_its_case(client: httpx.AsyncClient) -> None:
    await register(client, "dave@example.com")
    response = await client.post(
        f"{API}/auth/register", json={"email": " DAVE@example.com", "password": PASSWORD}
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "email_taken"


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email", "password": PASSWORD},
        {"email": "erin@example.com", "password": "short"},
        {"email": "erin@example.com"},
        {"password": PASSWORD},
        {"email": ["erin@example.com"], "password": PASSWORD},
        {"email": "erin@example.com", "password": PASSWORD, "full_name": "x" * 201},
    ],
)
async def test_malformed_registration_is_a_422_problem(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    response = await client.post(f"{API}/auth/register", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_request"
    assert response.json()["errors"]


@pytest.mark.parametrize(
    ("path", "kwargs"),
    [
        (
            "/auth/register",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
        ),
        ("/auth/token", {"data": {"username": "x@example.com"}}),
        ("/auth/refresh", {"json": {"refresh_token": ""}}),
        ("/auth/refresh", {"json": {}}),
        ("/auth/logout", {"json": {"refresh_token": 42}}),
    ],
)
async def test_malformed_auth_requests_are_422_problems(
    client: httpx.AsyncClient, path: str, kwargs: dict[str, object]
) -> None:
    response = await client.post(f"{API}{path}", **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_change_password_ends_other_sessions(client: httpx.AsyncClient) -> None:
    await register(client, "fay@example.com")
    old = await tokens(client, "fay@example.com")
    headers = bearer(old["access_token"])

    wrong = await client.post(
        f"{API}/me/password",
        json={"current_password": "guess", "new_password": "a brand new passphrase"},
        headers=headers,
    )
    assert wrong.status_code == 403
    assert wrong.json()["code"] == "wrong_password"

    changed = await client.post(
        f"{API}/me/password",
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
        headers=headers,
    )
    assert changed.status_code == 200
    fresh = changed.json()
    assert (await client.get(f"{API}/me", headers=bearer(fresh["access_token"]))).status_code == 200

    stale = await client.post(f"{API}/auth/refresh", json={"refresh_token": old["refresh_token"]})
    assert stale.status_code == 401
    assert (await login(client, "fay@example.com")).status_code == 401
    assert (await login(client, "fay@example.com", "a brand new passphrase")).status_code == 200


async def test_a_customer_calling_staff_and_admin_endpoints_gets_403(
    client: httpx.AsyncClient,
) -> None:
    user = await register(client, "gus@example.com")
    headers = bearer((await tokens(client, "gus@example.com"))["access_token"])
    staff_only = await client.get(f"{API}/users/{user['id']}", headers=headers)
    assert staff_only.status_code == 403
    assert staff_only.json()["code"] == "staff_only"
    admin_only = await client.patch(
        f"{API}/users/{user['id']}", json={"role": "admin"}, headers=headers
    )
    assert admin_only.status_code == 403
    assert (await client.get(f"{API}/users/{user['id']}")).status_code == 401


async def test_the_stored_role_decides_not_the_token_claim(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    customer = await register(client, "hal@example.com")
    forged_claim = issue_access_token(settings, uuid.UUID(customer["id"]), Role.ADMIN)
    response = await client.patch(
        f"{API}/users/{customer['id']}", json={"role": "admin"}, headers=bearer(forged_claim)
    )
    assert response.status_code == 403


async def test_disabled_accounts_cannot_log_in_refresh_or_call(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    user = await register(client, "jan@example.com")
    session = await tokens(client, "jan@example.com")

    disabled = await client.patch(
        f"{API}/users/{user['id']}", json={"is_active": False}, headers=admin_headers
    )
    assert disabled.status_code == 200
    assert disabled.json()["is_active"] is False

    assert (await login(client, "jan@example.com")).json()["code"] == "account_disabled"
    refreshed = await client.post(
        f"{API}/auth/refresh", json={"refresh_token": session["refresh_token"]}
    )
    assert refreshed.status_code == 401
    me = await client.get(f"{API}/me", headers=bearer(session["access_token"]))
    assert me.status_code == 401


async def test_staff_see_any_account_and_unknown_ids_are_404(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    user = await register(client, "kim@example.com")
    found = await client.get(f"{API}/users/{user['id']}", headers=admin_headers)
    assert found.json()["email"] == "kim@example.com"
    missing = await client.get(
        f"{API}/users/00000000-0000-0000-0000-000000000000", headers=admin_headers
    )
    assert missing.status_code == 404
