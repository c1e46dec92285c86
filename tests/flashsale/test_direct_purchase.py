"""Purchases answered before routing (``flashsale/direct_purchase.py``) answer exactly what the
route answers, and every request that is not well formed still reaches the route.

Whether the route handled a request is seen from the app-wide dependency every route runs
(``refuse_unstorable_input``), counted through ``dependency_overrides``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from starlette.requests import HTTPConnection

from agora.core.db import Database
from agora.core.validation import refuse_unstorable_input
from agora.settings import Settings
from tests.flashsale.support import API, sale_and_buyers

ROUTE = API + "/flash-sales/{sale_id}/purchase"
# Differ on every answer: the request id, and the ticket's id in the body and ``Location``.
_PER_ANSWER = frozenset({"x-request-id", "location", "content-length"})


@pytest.fixture
def routed(app: FastAPI) -> Iterator[list[str]]:
    """The paths of the purchases that reached the route, in order."""
    paths: list[str] = []

    async def counted(connection: HTTPConnection) -> None:
        if connection.url.path.endswith("/purchase"):
            paths.append(connection.url.path)
        await refuse_unstorable_input(connection)

    app.dependency_overrides[refuse_unstorable_input] = counted
    yield paths
    app.dependency_overrides.pop(refuse_unstorable_input)


@pytest.fixture
async def sale(
    client: httpx.AsyncClient, database: Database, settings: Settings, redis: Redis
) -> tuple[str, list[dict[str, str]]]:
    """The purchase URL of a sale of 2 units, and four buyers."""
    sale, buyers, _ = await sale_and_buyers(
        client, database, settings, redis, quantity=2, buyer_count=4
    )
    return f"{API}/flash-sales/{sale['id']}/purchase", buyers


def _shape(response: httpx.Response) -> tuple[int, dict[str, str]]:
    return response.status_code, {
        name: value for name, value in response.headers.items() if name not in _PER_ANSWER
    }


async def test_accepted_and_refused_purchases_answer_as_the_route_does(
    client: httpx.AsyncClient, sale: tuple[str, list[dict[str, str]]], routed: list[str]
) -> None:
    url, (first, second, third, fourth) = sale
    # A query string is not a well-formed purchase: the route answers it.
    direct = await client.post(url, json={"quantity": 1}, headers=first)
    through_route = await client.post(url + "?via=route", json={"quantity": 1}, headers=second)
    sold_out = await client.post(url, json={"quantity": 1}, headers=third)
    sold_out_on_route = await client.post(url + "?via=route", json={"quantity": 1}, headers=fourth)

    assert routed == [url, url]
    assert _shape(direct) == _shape(through_route)
    assert direct.status_code == 202
    for answer in (direct, through_route):
        ticket = answer.json()["ticket_id"]
        assert answer.headers["location"] == f"{url.removesuffix('/purchase')}/tickets/{ticket}"
    assert _shape(sold_out) == _shape(sold_out_on_route)
    assert sold_out.content == sold_out_on_route.content
    assert sold_out.json()["code"] == "sold_out"


async def test_a_key_answered_before_routing_is_replayed_by_the_route(
    client: httpx.AsyncClient, sale: tuple[str, list[dict[str, str]]], routed: list[str]
) -> None:
    url, (buyer, *_) = sale
    headers = {**buyer, "Idempotency-Key": "once"}

    first = await client.post(url, json={"quantity": 1}, headers=headers)
    replay = await client.post(url + "?via=route", json={"quantity": 1}, headers=headers)
    reused = await client.post(url, json={"quantity": 2}, headers=headers)

    assert routed == [url]
    assert first.status_code == replay.status_code == 202
    assert replay.json() == first.json()
    assert replay.headers["idempotent-replayed"] == "true"
    assert (reused.status_code, reused.json()["code"]) == (422, "idempotency_key_reused")


async def test_requests_that_are_not_well_formed_reach_the_route(
    client: httpx.AsyncClient, sale: tuple[str, list[dict[str, str]]], routed: list[str]
) -> None:
    url, (buyer, *_) = sale

    async def chunked() -> AsyncIterator[bytes]:
        yield b'{"quantity"'
        yield b": 1}"

    answers = [
        await client.post(url, json={"quantity": 1}),
        await client.post(url, json={"quantity": 1}, headers={"Authorization": "Bearer nope"}),
        await client.post(url, json={"quantity": 0}, headers=buyer),
        await client.post(url, json={"quantity": 1, "x": "\x00"}, headers=buyer),
        await client.post(url, json={"quantity": 1}, headers={**buyer, "Idempotency-Key": ""}),
        await client.post(
            url, content=b'{"quantity": 1}', headers={**buyer, "Content-Type": "text/plain"}
        ),
        await client.post(
            url, content=chunked(), headers={**buyer, "Content-Type": "application/json"}
        ),
    ]

    assert [answer.status_code for answer in answers] == [401, 401, 422, 422, 422, 422, 202]
    assert len(routed) == len(answers)
    assert answers[0].json()["code"] == "not_authenticated"
    assert answers[1].json()["code"] == "invalid_token"
    assert answers[2].headers["content-type"] == "application/problem+json"


async def test_a_direct_purchase_is_counted_and_logged_under_its_route(
    client: httpx.AsyncClient, sale: tuple[str, list[dict[str, str]]], routed: list[str]
) -> None:
    url, (buyer, *_) = sale
    labels = {"method": "POST", "route": ROUTE, "status": "202"}
    before = REGISTRY.get_sample_value("agora_http_requests_total", labels) or 0.0

    answer = await client.post(url, json={"quantity": 1}, headers=buyer)

    assert (answer.status_code, routed) == (202, [])
    assert REGISTRY.get_sample_value("agora_http_requests_total", labels) == before + 1
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-request-id"]


async def test_an_unknown_sale_is_the_route_s_404(
    client: httpx.AsyncClient, sale: tuple[str, list[dict[str, str]]], routed: list[str]
) -> None:
    _, (buyer, *_) = sale
    url = f"{API}/flash-sales/{uuid.uuid4()}/purchase"

    direct = await client.post(url, json={"quantity": 1}, headers=buyer)
    through_route = await client.post(url + "?via=route", json={"quantity": 1}, headers=buyer)

    assert routed == [url]
    assert (direct.status_code, direct.json()["code"]) == (404, "flash_sale_not_found")
    assert direct.content == through_route.content
