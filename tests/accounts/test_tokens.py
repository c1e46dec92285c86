"""Forged, foreign, expired and misused tokens are refused with 401."""

from __future__ import annotations

import datetime as dt
import uuid
import warnings
from typing import Any

import httpx
import jwt
import pytest
from jwt.warnings import InsecureKeyLengthWarning

from agora.core.security import ACCESS_TOKEN_TYPE, ALGORITHM, AUDIENCE, ISSUER
from agora.settings import Settings
from tests.accounts.flows import API, bearer, register, tokens


def _claims(user_id: str, **overrides: Any) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    claims: dict[str, Any] = {
        "sub": user_id,
        "role": "customer",
        "typ": ACCESS_TOKEN_TYPE,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + dt.timedelta(minutes=5),
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


def _sign(claims: dict[str, Any], settings: Settings, algorithm: str = ALGORITHM) -> str:
    return jwt.encode(claims, settings.secret_key.get_secret_value(), algorithm=algorithm)


@pytest.fixture
async def user_id(client: httpx.AsyncClient) -> str:
    """An existing customer's id."""
    return str((await register(client, "tokens@example.com"))["id"])


async def _me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get(f"{API}/me", headers=bearer(token))


async def test_a_well_formed_token_is_accepted(
    client: httpx.AsyncClient, settings: Settings, user_id: str
) -> None:
    assert (await _me(client, _sign(_claims(user_id), settings))).status_code == 200


async def test_alg_none_is_refused(
    client: httpx.AsyncClient, settings: Settings, user_id: str
) -> None:
    unsigned = jwt.encode(_claims(user_id), key=None, algorithm="none")
    response = await _me(client, unsigned)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


async def test_another_hmac_algorithm_with_our_key_is_refused(
    client: httpx.AsyncClient, settings: Settings, user_id: str
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)  # our key is sized for HS256
        token = _sign(_claims(user_id), settings, "HS512")
    assert (await _me(client, token)).status_code == 401


async def test_a_token_signed_with_a_wrong_key_is_refused(
    client: httpx.AsyncClient, user_id: str
) -> None:
    forged = jwt.encode(_claims(user_id), "a-key-that-is-not-ours-but-long-enough", "HS256")
    assert (await _me(client, forged)).status_code == 401


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "another-api"},
        {"iss": "someone-else"},
        {"exp": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)},
        {"typ": "refresh"},
        {"typ": None},
        {"exp": None},
        {"iat": None},
        {"sub": "not-a-uuid"},
        {"role": "overlord"},
    ],
    ids=[
        "wrong-audience", "wrong-issuer", "expired", "refresh-type", "no-type", "no-exp",
        "no-iat", "bad-subject", "unknown-role",
    ],
)  # fmt: skip
async def test_bad_claims_are_refused(
    client: httpx.AsyncClient, settings: Settings, user_id: str, overrides: dict[str, Any]
) -> None:
    response = await _me(client, _sign(_claims(user_id, **overrides), settings))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_garbage_and_missing_tokens_are_refused(client: httpx.AsyncClient) -> None:
    assert (await _me(client, "not.a.jwt")).status_code == 401
    response = await client.get(f"{API}/me")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


async def test_a_token_for_a_user_that_does_not_exist_is_refused(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    assert (await _me(client, _sign(_claims(str(uuid.uuid4())), settings))).status_code == 401


async def test_an_access_token_is_not_a_refresh_token_and_vice_versa(
    client: httpx.AsyncClient, user_id: str
) -> None:
    issued = await tokens(client, "tokens@example.com")
    as_refresh = await client.post(
        f"{API}/auth/refresh", json={"refresh_token": issued["access_token"]}
    )
    assert as_refresh.status_code == 401
    assert as_refresh.json()["code"] == "invalid_refresh_token"
    assert (await _me(client, issued["refresh_token"])).status_code == 401
