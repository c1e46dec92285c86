"""The edge cache answers anonymous catalog reads before routing, and forgets them on writes,
in every app instance."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from agora.app import create_app
from agora.settings import Settings
from tests.catalog.support import auth, create_product
from tests.support import in_process_client, wait_for


@pytest.fixture
async def other_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """A second app instance, with its own lifespan, Redis clients, local cache and edge."""
    other = create_app(settings)
    async with other.router.lifespan_context(other):
        yield other


async def test_a_hit_is_the_apps_own_answer_and_304_is_served_from_the_edge(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings
) -> None:
    product = await create_product(client, settings, "Edge Lamp")
    url = f"/api/v1/products/{product['id']}"
    first = await client.get(url)
    assert url in app.state.edge
    hit = await client.get(url)
    assert hit.content == first.content
    for header in ("etag", "cache-control", "content-type", "x-content-type-options"):
        assert hit.headers[header] == first.headers[header]
    assert hit.headers["x-request-id"] != first.headers["x-request-id"]
    not_modified = await client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified.headers["etag"] == first.headers["etag"]
    assert not_modified.headers["cache-control"] == first.headers["cache-control"]
    other_etag = await client.get(url, headers={"If-None-Match": '"other"'})
    assert other_etag.status_code == 200


async def test_credentials_bypass_the_edge(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings
) -> None:
    product = await create_product(client, settings, "Staff Only View")
    url = f"/api/v1/products/{product['id']}"
    await client.get(url)
    staff = await client.get(url, headers=auth(settings))
    assert staff.headers["cache-control"] == "private, no-store"
    await client.get(url, headers=auth(settings))
    assert (await client.get(url, headers={"Cookie": "a=b"})).status_code == 200
    assert url in app.state.edge
    draft = await create_product(client, settings, "Draft", status="draft")
    draft_url = f"/api/v1/products/{draft['id']}"
    assert (await client.get(draft_url, headers=auth(settings))).status_code == 200
    assert (await client.get(draft_url)).status_code == 404
    assert draft_url not in app.state.edge


async def test_a_write_in_one_instance_drops_the_edge_entry_in_the_other(
    client: httpx.AsyncClient, other_app: FastAPI, settings: Settings
) -> None:
    product = await create_product(client, settings, "Edge Old")
    url = f"/api/v1/products/{product['id']}"
    listing = "/api/v1/products?q=edge"
    async with in_process_client(other_app) as other:
        for path in (url, listing, "/api/v1/categories"):
            await other.get(path)
            assert path in other_app.state.edge
        renamed = await client.patch(url, json={"name": "Edge New"}, headers=auth(settings))
        assert renamed.status_code == 200

        async def dropped() -> bool:
            return url not in other_app.state.edge and listing not in other_app.state.edge

        await wait_for(dropped)
        assert "/api/v1/categories" in other_app.state.edge  # other tags are kept
        assert (await other.get(url)).json()["name"] == "Edge New"
        assert (await other.get(listing)).json()["items"][0]["name"] == "Edge New"


async def test_edge_hits_spend_the_default_budget(settings: Settings) -> None:
    small = create_app(settings.model_copy(update={"rate_limit_default": "3/minute"}))
    async with (
        small.router.lifespan_context(small),
        in_process_client(small, ip="203.0.113.77") as client,
    ):
        statuses = [(await client.get("/api/v1/categories")).status_code for _ in range(4)]
        assert "/api/v1/categories" in small.state.edge
        assert statuses == [200, 200, 200, 429]
        refused = await client.get("/api/v1/categories")
        assert refused.headers["ratelimit-policy"] == '"default";q=3;w=60'
        async with in_process_client(small, ip="203.0.113.78") as other:
            assert (await other.get("/api/v1/categories")).status_code == 200


async def test_liveness_is_answered_by_the_edge_and_still_counted(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    for _ in range(2):
        response = await client.get("/healthz")
        assert response.json() == {"status": "ok"}
        assert response.headers["x-content-type-options"] == "nosniff"
    assert "/healthz" in app.state.edge
    metrics = (await client.get("/metrics")).text
    assert 'agora_http_requests_total{method="GET",route="/healthz",status="200"}' in metrics
