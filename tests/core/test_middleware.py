"""Security headers, CORS and the request body limit."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from agora.core.apidocs import DOCS_CONTENT_SECURITY_POLICY
from agora.settings import Settings
from tests.support import served


async def _app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with served(settings) as (client, _):
        yield client


@pytest.fixture
async def production_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app configured for production."""
    production = settings.model_copy(update={"env": "production", "payment_providers": "stripe"})
    async for client in _app_client(production):
        yield client


@pytest.fixture
async def cors_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app allowing one storefront origin, with a 1 KiB body limit."""
    configured = settings.model_copy(
        update={"cors_origins": "https://shop.example", "max_body_size": 1024}
    )
    async for client in _app_client(configured):
        yield client


async def test_json_answers_carry_a_strict_policy(client: httpx.AsyncClient) -> None:
    for response in (await client.get("/healthz"), await client.get("/api/v1/me")):
        assert response.headers["content-security-policy"] == (
            "default-src 'none'; frame-ancestors 'none'"
        )
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "strict-transport-security" not in response.headers


async def test_docs_run_under_a_strict_policy_of_their_own(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert policy == DOCS_CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe" not in policy


async def test_hsts_only_in_production(production_client: httpx.AsyncClient) -> None:
    response = await production_client.get("/healthz")
    assert response.headers["strict-transport-security"].startswith("max-age=")


async def test_cors_allows_the_configured_origin_only(cors_client: httpx.AsyncClient) -> None:
    preflight = await cors_client.options(
        "/api/v1/auth/token",
        headers={
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://shop.example"
    simple = await cors_client.get("/api/v1/me", headers={"Origin": "https://shop.example"})
    assert "retry-after" in simple.headers["access-control-expose-headers"].lower()
    foreign = await cors_client.get("/api/v1/me", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in foreign.headers


async def test_no_cors_headers_without_configured_origins(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"Origin": "https://shop.example"})
    assert "access-control-allow-origin" not in response.headers


async def test_a_declared_oversized_body_is_refused(cors_client: httpx.AsyncClient) -> None:
    response = await cors_client.post(
        "/api/v1/auth/register",
        json={"email": "big@example.com", "password": "x" * 2000},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "payload_too_large"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_a_streamed_oversized_body_is_refused(cors_client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"email": "big@example.com", "password": "'
        for _ in range(8):
            yield b"x" * 256
        yield b'"}'

    response = await cors_client.post(
        "/api/v1/auth/register",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


async def test_a_body_within_the_limit_passes(cors_client: httpx.AsyncClient) -> None:
    response = await cors_client.post(
        "/api/v1/auth/register",
        json={"email": "small@example.com", "password": "a fine passphrase"},
    )
    assert response.status_code == 201
