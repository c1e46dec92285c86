"""Deliveries by a real worker to a real receiving server: signed bodies, retries with their
log, disabling a failing endpoint, replay, redirects, rotation, and per-endpoint order."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from agora.core import outbox
from agora.core.db import Database
from agora.core.security import Role
from agora.core.serialization import loads
from agora.settings import Settings
from tests.factories import Account, create_user
from tests.support import wait_for
from tests.webhooks.conftest import Receiver
from tests.webhooks.verify import verify

pytestmark = pytest.mark.worker
Starter = Callable[[], None]


@pytest.fixture
async def staff(database: Database, settings: Settings) -> Account:
    """A member of staff."""
    return await create_user(database, settings, Role.STAFF)


async def endpoint(
    client: httpx.AsyncClient, staff: Account, url: str, events: list[str]
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/webhooks", json={"url": url, "events": events}, headers=staff.headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def emit(database: Database, topic: str, payload: dict[str, Any]) -> None:
    async with database.unit_of_work() as session:
        outbox.record_event(session, topic, payload)


async def deliveries(
    client: httpx.AsyncClient, staff: Account, endpoint_id: str
) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/webhooks/{endpoint_id}/deliveries", headers=staff.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_an_event_is_delivered_signed(
    client: httpx.AsyncClient,
    database: Database,
    staff: Account,
    receiver: Receiver,
    delivering: Starter,
) -> None:
    delivering()
    hook = await endpoint(client, staff, receiver.url, ["order.paid"])
    order_id = str(uuid.uuid4())
    await emit(database, "order.paid", {"order_id": order_id})
    await wait_for(lambda: _true(receiver.requests), timeout=30)
    received = receiver.requests[0]
    body = loads(received.body)
    assert (body["type"], body["data"], body["id"].startswith("evt_")) == (
        "order.paid",
        {"order_id": order_id},
        True,
    )
    assert verify(received.headers["Agora-Signature"], received.body, hook["secret"])
    assert not verify(received.headers["Agora-Signature"], received.body + b" ", hook["secret"])
    log = await wait_for(
        lambda: _when(
            deliveries(client, staff, hook["id"]), lambda d: d[0]["status"] == "succeeded"
        )
    )
    assert log[0]["attempts"][0]["status_code"] == 200


async def test_failures_are_retried_logged_then_the_endpoint_disabled_and_replayed(
    client: httpx.AsyncClient,
    database: Database,
    staff: Account,
    receiver: Receiver,
    delivering: Starter,
) -> None:
    delivering()
    receiver.default = 500
    hook = await endpoint(client, staff, receiver.url, ["stock.low"])
    await emit(database, "stock.low", {"variant_id": str(uuid.uuid4()), "available": 2})

    async def disabled() -> dict[str, Any] | None:
        got = (await client.get(f"/api/v1/webhooks/{hook['id']}", headers=staff.headers)).json()
        return got if not got["is_active"] else None

    state = await wait_for(disabled, timeout=60)
    assert state["disabled_reason"].startswith("every attempt failed")
    [delivery] = await deliveries(client, staff, hook["id"])
    assert len(delivery["attempts"]) >= 2
    assert {attempt["status_code"] for attempt in delivery["attempts"]} == {500}
    async with database.unit_of_work() as session:
        topics = list(await session.scalars(select(outbox.OutboxEvent.topic)))
    assert "webhook.endpoint_disabled" in topics  # staff are told (ops stream, dashboard)

    receiver.default = 200
    enabled = await client.patch(
        f"/api/v1/webhooks/{hook['id']}", json={"is_active": True}, headers=staff.headers
    )
    assert enabled.json()["failing_since"] is None
    replayed = await client.post(
        f"/api/v1/webhooks/{hook['id']}/deliveries/{delivery['id']}/replay", headers=staff.headers
    )
    assert replayed.status_code == 202
    done = await wait_for(
        lambda: _when(
            deliveries(client, staff, hook["id"]), lambda d: d[0]["status"] == "succeeded"
        ),
        timeout=30,
    )
    assert done[0]["attempts"][-1]["status_code"] == 200
    assert loads(receiver.requests[-1].body)["id"] == delivery["event_id"]


async def test_redirects_are_not_followed_and_rotation_signs_twice(
    client: httpx.AsyncClient, staff: Account, receiver: Receiver, delivering: Starter
) -> None:
    delivering()
    hook = await endpoint(client, staff, receiver.url, ["order.paid"])
    rotated = await client.post(
        f"/api/v1/webhooks/{hook['id']}/rotate-secret", headers=staff.headers
    )
    new_secret = rotated.json()["secret"]
    receiver.answers, receiver.redirect_to = [302], receiver.url.replace("hooks", "elsewhere")
    test = await client.post(f"/api/v1/webhooks/{hook['id']}/test", headers=staff.headers)
    assert test.status_code == 202
    log = await wait_for(
        lambda: _when(deliveries(client, staff, hook["id"]), lambda d: d[0]["attempts"])
    )
    assert log[0]["attempts"][0]["status_code"] == 302
    assert len(receiver.requests) == 1  # the Location was not followed
    received = receiver.requests[0]
    header = received.headers["Agora-Signature"]
    assert header.count("v1=") == 2
    assert verify(header, received.body, hook["secret"])
    assert verify(header, received.body, new_secret)
    assert loads(received.body)["type"] == "webhook.test"


async def test_order_events_reach_an_endpoint_in_order(
    client: httpx.AsyncClient,
    database: Database,
    staff: Account,
    receiver: Receiver,
    delivering: Starter,
) -> None:
    await endpoint(client, staff, receiver.url, ["*"])
    receiver.answers = [503]  # the first attempt fails: the later events must wait for it
    order_id = str(uuid.uuid4())
    for topic in ("order.created", "order.paid", "order.cancelled"):
        await emit(database, topic, {"order_id": order_id})
    delivering()

    async def delivered_types() -> list[str] | None:
        types = [loads(request.body)["type"] for request in receiver.requests]
        return types if len(types) >= 4 else None

    types = await wait_for(delivered_types, timeout=120)
    first_failed, *succeeded = types
    assert succeeded == ["order.placed", "order.paid", "order.cancelled"]
    assert first_failed == "order.placed"


async def _true(value: Any) -> Any:
    return value


async def _when(fetch: Any, check: Callable[[Any], Any]) -> Any:
    found = await fetch
    return found if found and check(found) else None
