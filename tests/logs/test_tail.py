"""Live tail over a real server: matching lines pushed, resumed without gaps, rate capped; the
token offered in the subprotocol header, never read from the URL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import pytest
import websockets
from redis.asyncio import Redis
from websockets.exceptions import InvalidStatus

from agora.core.db import Database
from agora.core.security import Role, issue_access_token
from agora.settings import Settings
from tests.logs.support import NDJSON, load_all, ndjson, staff_headers
from tests.support import ApiProcess


def staff_token(settings: Settings) -> str:
    return staff_headers(settings)["Authorization"].removeprefix("Bearer ")


def open_tail(server: ApiProcess, settings: Settings, **params: str) -> Any:
    """A staff tail, the token offered as a subprotocol."""
    return server.socket(f"/ws/logs?{urlencode(params)}", staff_token(settings))


async def receive(socket: Any, count: int) -> list[dict[str, Any]]:
    messages = []
    async with asyncio.timeout(10):
        while len(messages) < count:
            messages.append(orjson.loads(await socket.recv()))
    return messages


async def ship(
    server: ApiProcess, settings: Settings, database: Database, redis: Redis, *docs: dict[str, Any]
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        answer = await http.post(
            "/api/v1/logs", content=ndjson(*docs), headers={**NDJSON, **staff_headers(settings)}
        )
        assert answer.json()["accepted"] == len(docs)
    await load_all(database, redis)


@pytest.fixture(scope="module")
def server(service_env: dict[str, str]) -> Iterator[ApiProcess]:
    """One real API server for the module's tests (each starts its tail from now)."""
    process = ApiProcess(env={**service_env, "AGORA_LOG_TAIL_MAX_LINES_PER_SECOND": "20"})
    process.start()
    yield process
    process.stop()


async def test_the_tail_pushes_matching_lines_and_resumes_without_gaps(
    server: ApiProcess, settings: Settings, database: Database, redis: Redis
) -> None:
    async with open_tail(server, settings, q="level:error") as socket:
        assert socket.subprotocol == "agora"
        await asyncio.sleep(0.3)  # the tail starts reading from now
        await ship(
            server, settings, database, redis,
            {"level": "error", "message": "one"}, {"level": "info", "message": "skip"},
            {"level": "error", "message": "two"},
        )  # fmt: skip
        first = await receive(socket, 2)
    assert [m["line"]["message"] for m in first] == ["one", "two"]
    assert all(m["type"] == "line" and isinstance(m["line"]["id"], int) for m in first)
    await ship(
        server, settings, database, redis,
        {"level": "error", "message": "three"}, {"level": "error", "message": "four"},
    )  # fmt: skip
    async with open_tail(server, settings, q="level:error", after=first[0]["id"]) as socket:
        resumed = await receive(socket, 3)
    assert [m["line"]["message"] for m in resumed] == ["two", "three", "four"]


async def test_the_rate_cap_says_how_many_lines_it_dropped(
    server: ApiProcess, settings: Settings, database: Database, redis: Redis
) -> None:
    async with open_tail(server, settings) as socket:
        await asyncio.sleep(0.3)
        await ship(server, settings, database, redis, *({"message": f"m{n}"} for n in range(50)))
        messages = await receive(socket, 21)
    assert [m["type"] for m in messages] == ["line"] * 20 + ["dropped"]
    assert messages[-1]["count"] == 30
    assert messages[-1]["limit_per_second"] == 20


async def test_a_bad_query_or_a_bad_token_gets_no_socket(
    server: ApiProcess, settings: Settings
) -> None:
    customer = issue_access_token(settings, uuid.uuid4(), Role.CUSTOMER)
    for refused in (
        open_tail(server, settings, q="status:[1 TO"),
        open_tail(server, settings, after="nonsense"),
        server.socket("/ws/logs", "invalid"),
        server.socket("/ws/logs", customer),
    ):
        with pytest.raises(InvalidStatus) as answer:
            async with refused:
                pass
        assert answer.value.response.status_code == 403


async def test_a_token_in_the_url_does_not_authenticate(
    server: ApiProcess, settings: Settings
) -> None:
    url = f"ws://127.0.0.1:{server.port}/ws/logs?{urlencode({'token': staff_token(settings)})}"
    with pytest.raises(InvalidStatus) as answer:
        async with websockets.connect(url):
            pass
    assert answer.value.response.status_code == 403
