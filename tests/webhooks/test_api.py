"""Managing webhook endpoints, and events fanned out from the outbox into deliveries."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from agora.core import outbox
from agora.core.db import Database
from agora.core.netguard import UnsafeTarget
from agora.core.security import Role
from agora.settings import Settings
from agora.webhooks import service
from agora.webhooks.models import WebhookDelivery
from tests.factories import Account, create_user

HOOK = "http://127.0.0.1:9/hooks"


async def create(client: httpx.AsyncClient, staff: Account, events: list[str]) -> dict[str, str]:
    response = await client.post(
        "/api/v1/webhooks", json={"url": HOOK, "events": events}, headers=staff.headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, str] = response.json()
    return created


async def test_endpoint_lifecycle(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    staff = await create_user(database, settings, Role.STAFF)
    created = await create(client, staff, ["order.paid", "stock.low"])
    assert created["secret"].startswith("whsec_")
    listed = (await client.get("/api/v1/webhooks", headers=staff.headers)).json()["items"]
    assert [item["id"] for item in listed] == [created["id"]]
    assert "secret" not in listed[0]
    changed = await client.patch(
        f"/api/v1/webhooks/{created['id']}", json={"events": ["*"]}, headers=staff.headers
    )
    assert changed.json()["events"] == ["*"]
    rotated = await client.post(
        f"/api/v1/webhooks/{created['id']}/rotate-secret", headers=staff.headers
    )
    assert rotated.json()["secret"] not in (created["secret"], None)
    expires = dt.datetime.fromisoformat(rotated.json()["previous_secret_expires_at"])
    assert dt.timedelta(hours=23) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=24)
    deleted = await client.delete(f"/api/v1/webhooks/{created['id']}", headers=staff.headers)
    assert deleted.status_code == 204
    gone = await client.get(f"/api/v1/webhooks/{created['id']}", headers=staff.headers)
    assert gone.status_code == 404


async def test_bad_endpoints_are_refused(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    staff = await create_user(database, settings, Role.STAFF)
    customer = await create_user(database, settings)
    body = {"url": HOOK, "events": ["order.paid"]}
    assert (
        await client.post("/api/v1/webhooks", json=body, headers=customer.headers)
    ).status_code == 403
    unknown = await client.post(
        "/api/v1/webhooks", json={**body, "events": ["order.teleported"]}, headers=staff.headers
    )
    assert (unknown.status_code, unknown.json()["code"]) == (422, "unknown_event_type")
    not_http = await client.post(
        "/api/v1/webhooks", json={**body, "url": "ftp://example.com/x"}, headers=staff.headers
    )
    assert not_http.status_code == 422


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/x", "http://169.254.169.254/latest", "http://localhost/x"]
)
async def test_private_targets_are_refused_by_default(database: Database, url: str) -> None:
    async with database.unit_of_work() as session:
        with pytest.raises(UnsafeTarget):
            await service.create_endpoint(
                session, url, ["*"], description=None, allow_private=False
            )


async def test_relayed_events_become_deliveries_once(
    client: httpx.AsyncClient, database: Database, settings: Settings, redis: Redis
) -> None:
    staff = await create_user(database, settings, Role.STAFF)
    everything = await create(client, staff, ["*"])
    paid_only = await create(client, staff, ["order.paid"])
    async with database.unit_of_work() as session:
        outbox.record_event(session, "order.paid", {"order_id": str(uuid.uuid4())})
        outbox.record_event(session, "order.created", {"order_id": str(uuid.uuid4())})
        outbox.record_event(session, "pricewatch.undercut", {"target_id": "t1"})
        outbox.record_event(session, "cart.touched", {})  # not a webhook event
    async with database.unit_of_work() as session:
        await outbox.relay_pending(session, redis, consumers=[service.fan_out])
    async with database.unit_of_work() as session:
        # A relay that crashed after publishing publishes again: no second delivery.
        events = list(await session.scalars(select(outbox.OutboxEvent)))
        await service.fan_out(session, events)
        rows = (
            await session.execute(
                select(WebhookDelivery.endpoint_id, WebhookDelivery.event_type).order_by(
                    WebhookDelivery.sequence
                )
            )
        ).all()
        count = await session.scalar(select(func.count()).select_from(WebhookDelivery))
    assert count == 4
    assert {(str(endpoint), kind) for endpoint, kind in rows} == {
        (everything["id"], "order.paid"),
        (everything["id"], "order.placed"),
        (everything["id"], "price.undercut"),
        (paid_only["id"], "order.paid"),
    }
