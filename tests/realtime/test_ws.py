"""Live order events over WebSocket: a buyer gets its own, never another's; staff get all."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from agora.core.db import Database
from agora.core.security import Role
from agora.settings import Settings
from tests.factories import Account, create_carts, create_user, create_variant
from tests.orders.support import ADDRESS
from tests.realtime.support import connect, token_of
from tests.support import ApiProcess, WorkerProcess

pytestmark = pytest.mark.worker
EVENT_TIMEOUT_S = 15


async def _next_event(socket: Any) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), EVENT_TIMEOUT_S))
    return event


async def _order(
    http: httpx.AsyncClient, database: Database, buyer: Account, variant: object
) -> dict[str, Any]:
    [cart_id] = await create_carts(database, [buyer], {variant: 1})  # type: ignore[dict-item]
    response = await http.post(
        "/api/v1/orders",
        json={"cart_id": str(cart_id), "shipping_address": ADDRESS},
        headers=buyer.headers,
    )
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    return order


async def _next_order_event(socket: Any) -> dict[str, Any]:
    """The next order event (staff also see stock events)."""
    while not (event := await _next_event(socket))["topic"].startswith("order."):
        pass
    return event


@pytest.mark.timeout(120)
async def test_buyers_receive_their_own_order_events_only(
    celery_worker: WorkerProcess,
    api_server: Callable[..., ApiProcess],
    database: Database,
    settings: Settings,
) -> None:
    server = api_server(workers=2)
    alice, bob = await create_user(database, settings), await create_user(database, settings)
    staff = await create_user(database, settings, Role.STAFF)
    variant = await create_variant(database, stock=10)

    async with (
        connect(server, token_of(alice)) as alice_socket,
        connect(server, token_of(bob)) as bob_socket,
        connect(server, token_of(staff), "ops") as ops_socket,
        httpx.AsyncClient(base_url=server.base_url, timeout=30) as http,
    ):
        bob_order = await _order(http, database, bob, variant)
        bob_event = await _next_event(bob_socket)
        cancelled = await http.post(f"/api/v1/orders/{bob_order['id']}/cancel", headers=bob.headers)
        assert cancelled.status_code == 200
        bob_cancel_event = await _next_event(bob_socket)
        alice_order = await _order(http, database, alice, variant)
        alice_event = await _next_event(alice_socket)
        ops_events = [await _next_order_event(ops_socket) for _ in range(3)]
        hidden = await http.get(f"/api/v1/orders/{bob_order['id']}", headers=alice.headers)

    assert (bob_event["topic"], bob_event["data"]["order_id"]) == ("order.created", bob_order["id"])
    assert bob_event["data"]["status"] == "pending_payment"
    assert (bob_cancel_event["topic"], bob_cancel_event["data"]["status"]) == (
        "order.cancelled",
        "cancelled",
    )
    # Bob's events were published before Alice ordered: had they reached her socket, they would
    # have come first.
    assert (alice_event["topic"], alice_event["data"]["order_id"]) == (
        "order.created",
        alice_order["id"],
    )
    assert [event["data"]["order_id"] for event in ops_events] == [
        bob_order["id"],
        bob_order["id"],
        alice_order["id"],
    ]
    assert hidden.status_code == 404


async def test_invalid_token_and_ops_stream_for_buyers_are_refused(
    api_server: Callable[..., ApiProcess], database: Database, settings: Settings
) -> None:
    server = api_server()
    buyer = await create_user(database, settings)

    for token, stream in (("not-a-token", "orders"), (token_of(buyer), "ops")):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(server, token, stream):
                pass
        assert refused.value.response.status_code == 403
