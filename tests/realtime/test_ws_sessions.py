"""A WebSocket lives no longer than its token, and its token stays out of URLs and logs.

Real ``agora api`` servers with two worker processes: a revocation published by the process
that handled the logout closes sockets held by either process.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from agora.core.db import Database
from agora.core.security import Role, issue_access_token
from agora.settings import Settings
from tests.accounts.flows import API, bearer, register, tokens
from tests.factories import create_user
from tests.realtime.support import connect, token_of
from tests.support import ApiProcess

CLOSE_TIMEOUT_S = 30
TOKEN_NO_LONGER_VALID = 4401


async def _closed(socket: Any) -> tuple[int, str]:
    """Wait for the server to close the socket; its close code and reason."""
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(_drain(socket), CLOSE_TIMEOUT_S)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def _drain(socket: Any) -> None:
    while True:
        await socket.recv()


async def _open_by_first_message(server: ApiProcess, token: str) -> Any:
    socket = await websockets.connect(f"ws://127.0.0.1:{server.port}/ws")
    await socket.send(json.dumps({"token": token}))
    return socket


async def _is_open(socket: Any) -> bool:
    pong = await socket.ping()
    await asyncio.wait_for(pong, CLOSE_TIMEOUT_S)
    return True


@pytest.mark.timeout(120)
async def test_logout_closes_the_users_sockets_in_every_process_at_once(
    api_server: Callable[..., ApiProcess], database: Database, settings: Settings
) -> None:
    server = await asyncio.to_thread(api_server, workers=2)
    bystander = await create_user(database, settings)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        await register(http, "leaving@example.com")
        session = await tokens(http, "leaving@example.com")
        access = session["access_token"]
        by_header = [await connect(server, access) for _ in range(3)]
        by_message = await _open_by_first_message(server, access)
        other = await connect(server, token_of(bystander))
        assert {socket.subprotocol for socket in by_header} == {"agora"}
        assert await _is_open(by_message)

        logout = await http.post(
            f"{API}/auth/logout", json={"refresh_token": session["refresh_token"]}
        )
        assert logout.status_code == 204
        closes = await asyncio.gather(*(_closed(socket) for socket in [*by_header, by_message]))

        assert {code for code, _ in closes} == {TOKEN_NO_LONGER_VALID}
        assert all("revoked" in reason for _, reason in closes)
        assert await _is_open(other)
        await other.close()
        # And the revoked token cannot open a new socket either.
        with pytest.raises(InvalidStatus) as refused:
            async with connect(server, access):
                pass
        assert refused.value.response.status_code == 403
        still_valid = (await tokens(http, "leaving@example.com"))["access_token"]
        async with connect(server, still_valid) as fresh:
            assert await _is_open(fresh)
        assert (await http.get(f"{API}/me", headers=bearer(access))).status_code == 401


async def test_a_socket_closes_when_its_token_expires(
    api_server: Callable[..., ApiProcess], database: Database, settings: Settings
) -> None:
    server = await asyncio.to_thread(api_server)
    buyer = await create_user(database, settings, Role.STAFF)
    short_lived = issue_access_token(
        settings.model_copy(update={"access_token_ttl": 2}), buyer.id, Role.STAFF
    )

    async with connect(server, short_lived, "ops") as socket:
        code, reason = await _closed(socket)

    assert code == TOKEN_NO_LONGER_VALID
    assert "expired" in reason


async def test_a_bad_first_message_closes_the_socket(api_server: Callable[..., ApiProcess]) -> None:
    server = await asyncio.to_thread(api_server)
    for message in ('{"token": "not-a-token"}', "not json", '{"other": 1}'):
        socket = await websockets.connect(f"ws://127.0.0.1:{server.port}/ws")
        await socket.send(message)
        assert await _closed(socket) == (1008, "authentication failed")


async def test_a_token_in_the_url_does_not_authenticate(
    api_server: Callable[..., ApiProcess], database: Database, settings: Settings
) -> None:
    server = await asyncio.to_thread(api_server)
    buyer = await create_user(database, settings)

    socket = await websockets.connect(f"ws://127.0.0.1:{server.port}/ws?token={token_of(buyer)}")
    await socket.send("{}")  # a first message without a token: the URL's is not read either
    assert await _closed(socket) == (1008, "authentication failed")


async def test_tokens_in_urls_are_redacted_from_the_servers_log(
    api_server: Callable[..., ApiProcess], database: Database, settings: Settings, tmp_path: Path
) -> None:
    log_path = tmp_path / "api.log"
    server = await asyncio.to_thread(api_server, log_path=log_path, AGORA_LOG_LEVEL="INFO")
    buyer = await create_user(database, settings)
    token = token_of(buyer)

    # An old client still sending its token in the query string, and a current one.
    legacy = f"ws://127.0.0.1:{server.port}/ws?token={token}&access_token={token}"
    async with websockets.connect(legacy) as socket:
        await socket.send(json.dumps({"token": token}))
        assert await _is_open(socket)
    async with connect(server, token) as socket:
        assert await _is_open(socket)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        await http.get(f"{API}/products?token={token}")
    await asyncio.to_thread(server.stop)
    log = log_path.read_text()

    session_line = next(line for line in log.splitlines() if "/ws?token=" in line)
    assert "/ws?token=[redacted]&access_token=[redacted]" in session_line
    assert "accepted" in session_line
    assert token not in log
