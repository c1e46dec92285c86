"""Search: every form of the query language, its errors, paging newest first."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from redis.asyncio import Redis

from agora.core.db import Database
from agora.logs.query import matcher, parse
from agora.settings import Settings
from tests.logs.support import NDJSON, load_all, ndjson, staff_headers

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
LINES = [
    {"message": "order placed", "service": "agora", "level": "info", "status": 201,
     "path": "/api/v1/orders", "method": "POST", "provider": "stripe"},
    {"message": "payment failed at provider", "service": "agora", "level": "error",
     "status": 500, "path": "/api/v1/orders/9/payments", "provider": "alipay", "amount": 1250},
    {"message": "cache warmup took long", "service": "worker", "level": "debug", "status": 200,
     "path": "/api/v1/products"},
    {"message": "failed payment retried", "service": "agora", "level": "warn", "status": 503,
     "path": "/api/v1/orders/9", "provider": "alipay", "amount": 99},
    {"message": "no status here", "service": "edge", "flag": True},
]  # fmt: skip


@pytest.fixture
async def stored(
    client: httpx.AsyncClient, settings: Settings, database: Database, redis: Redis
) -> dict[str, str]:
    headers = staff_headers(settings)
    documents = [
        {**line, "ts": (NOW - dt.timedelta(seconds=len(LINES) - n)).isoformat()}
        for n, line in enumerate(LINES)
    ]
    answer = await client.post(
        "/api/v1/logs", content=ndjson(*documents), headers={**NDJSON, **headers}
    )
    assert answer.json()["accepted"] == len(LINES)
    await load_all(database, redis)
    return headers


async def messages(client: httpx.AsyncClient, headers: dict[str, str], q: str) -> list[str]:
    answer = await client.get("/api/v1/logs/search", params={"q": q}, headers=headers)
    assert answer.status_code == 200, answer.text
    return [item["message"] for item in answer.json()["items"]]


QUERY_FORMS = [
        ("", ["no status here", "failed payment retried", "cache warmup took long",
              "payment failed at provider", "order placed"]),
        ("status:500", ["payment failed at provider"]),
        ("status:[500 TO 599]", ["failed payment retried", "payment failed at provider"]),
        ("status:{500 TO 599]", ["failed payment retried"]),
        ("status:>=503", ["failed payment retried"]),
        ("status:<201", ["cache warmup took long"]),
        ("path:/api/v1/orders*", ["failed payment retried", "payment failed at provider",
                                  "order placed"]),
        ("path:/api/v1/orders/?", ["failed payment retried"]),
        ("service:agora AND NOT level:debug", ["failed payment retried",
                                               "payment failed at provider", "order placed"]),
        ("NOT service:agora", ["no status here", "cache warmup took long"]),
        ("-status:500", ["no status here", "failed payment retried", "cache warmup took long",
                         "order placed"]),
        ('"payment failed"', ["payment failed at provider"]),
        ("payment failed", ["failed payment retried", "payment failed at provider"]),
        ("message:warm*", ["cache warmup took long"]),
        ("attrs.provider:alipay", ["failed payment retried", "payment failed at provider"]),
        ("attrs.amount:1250", ["payment failed at provider"]),
        ("attrs.amount:[100 TO *]", ["payment failed at provider"]),
        ("attrs.flag:true", ["no status here"]),
        ("level:ERROR OR level:warn", ["failed payment retried", "payment failed at provider"]),
        ("service:(edge OR worker)", ["no status here", "cache warmup took long"]),
        ("(status:500 OR status:201) AND path:/api/v1/orders*",
         ["payment failed at provider", "order placed"]),
        ("status:500 AND path:/api/v1/orders*", ["payment failed at provider"]),
]  # fmt: skip


async def test_every_query_form_finds_exactly_its_lines(
    client: httpx.AsyncClient, stored: dict[str, str]
) -> None:
    found = {q: await messages(client, stored, q) for q, _ in QUERY_FORMS}
    assert found == dict(QUERY_FORMS)


BAD_QUERIES = {
    "status:[500 TO": 14,
    "(level:error": 12,
    "level:error AND": 15,
    "color:red": 0,
    "service:agora AND status:abc": 25,
    "status:500 ]": 11,
}


async def test_a_syntax_error_is_422_naming_the_position(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    headers = staff_headers(settings)
    for q, position in BAD_QUERIES.items():
        answer = await client.get("/api/v1/logs/search", params={"q": q}, headers=headers)
        assert answer.status_code == 422, q
        problem = answer.json()
        assert (problem["code"], problem["position"]) == ("invalid_query", position), q
        assert f"position {position}" in problem["detail"]


async def test_pages_go_from_newest_to_oldest_without_overlap(
    client: httpx.AsyncClient, stored: dict[str, str]
) -> None:
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/logs/search", params=params, headers=stored)).json()
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(LINES)
    assert len(set(seen)) == len(seen)
    assert (await client.get(
        "/api/v1/logs/search", params={"cursor": "garbage"}, headers=stored
    )).status_code == 422  # fmt: skip


async def test_the_time_range_bounds_the_search(
    client: httpx.AsyncClient, stored: dict[str, str]
) -> None:
    params = {
        "from": (NOW - dt.timedelta(seconds=2)).isoformat(),
        "to": (NOW - dt.timedelta(seconds=1)).isoformat(),
    }
    page = (await client.get("/api/v1/logs/search", params=params, headers=stored)).json()
    assert [item["message"] for item in page["items"]] == ["failed payment retried"]


async def test_the_tail_predicate_agrees_with_sql_on_every_query_form(
    client: httpx.AsyncClient, stored: dict[str, str]
) -> None:
    page = await client.get("/api/v1/logs/search", headers=stored)
    lines = page.json()["items"]
    for q, expected in QUERY_FORMS:
        matches = matcher(parse(q))
        assert [line["message"] for line in lines if matches(line)] == expected, q
