"""Webhook endpoints managed by staff, and events fanned out to them as deliveries.

Events come from the transactional outbox: the relay hands each batch it publishes to
``fan_out`` inside its own transaction, which writes one delivery row per (event, subscribed
endpoint) before the batch is marked relayed. So a committed event gets its deliveries exactly
when it is relayed, a relay that crashes leaves both undone, and a second relay of the same
event creates no second delivery (``(endpoint_id, event_id)`` is unique). Each new delivery is
queued for a worker after commit; the periodic dispatch catches any lost on the way.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.db import utcnow
from agora.core.errors import NotFound, ValidationFailed
from agora.core.jobs import defer
from agora.core.netguard import resolve_allowed
from agora.core.outbox import OutboxEvent
from agora.core.pagination import DEFAULT_LIMIT, decode_cursor, encode_cursor
from agora.webhooks import events, repository
from agora.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint

DELIVER_TASK = "agora.webhooks.deliver"
DISPATCH_TASK = "agora.webhooks.dispatch"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
_OLDEST = "oldest"
_NEWEST = "newest"


@dataclass(frozen=True)
class EndpointChanges:
    """What staff change on an endpoint (None: unchanged)."""

    url: str | None = None
    events: list[str] | None = None
    description: str | None = None
    is_active: bool | None = None


@dataclass(frozen=True)
class DeliveryLog:
    """A delivery and every attempt made for it."""

    delivery: WebhookDelivery
    attempts: list[WebhookAttempt]


def new_secret() -> str:
    """A fresh signing secret (256 random bits)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signing_secrets(endpoint: WebhookEndpoint, now: dt.datetime) -> list[str]:
    """The secrets a delivery is signed with now: the current one, and the previous one while
    its rotation overlap lasts."""
    current = [endpoint.secret]
    expires_at = endpoint.previous_secret_expires_at
    if endpoint.previous_secret is not None and expires_at is not None and expires_at > now:
        current.append(endpoint.previous_secret)
    return current


async def create_endpoint(
    session: AsyncSession,
    url: str,
    subscribed: list[str],
    *,
    description: str | None,
    allow_private: bool,
) -> WebhookEndpoint:
    """A new endpoint with a fresh secret; 422 for unknown event types or a URL that is not a
    public http(s) address (``unsafe_target``)."""
    await resolve_allowed(url, allow_private=allow_private)
    endpoint = WebhookEndpoint(
        id=uuid.uuid4(),
        url=url,
        events=_checked_events(subscribed),
        description=description,
        secret=new_secret(),
        is_active=True,
    )
    session.add(endpoint)
    await session.flush()
    return endpoint


async def get_endpoint(
    session: AsyncSession, endpoint_id: uuid.UUID, *, for_update: bool = False
) -> WebhookEndpoint:
    """An endpoint (locked until the transaction ends when ``for_update``); 404 if there is
    none with this id."""
    if for_update:
        endpoint = await repository.lock_endpoint(session, endpoint_id)
    else:
        endpoint = await repository.get_endpoint(session, endpoint_id)
    if endpoint is None:
        raise NotFound("No such webhook endpoint.", code="webhook_not_found")
    return endpoint


async def list_endpoints(
    session: AsyncSession, *, cursor: str | None = None, limit: int = DEFAULT_LIMIT
) -> tuple[Sequence[WebhookEndpoint], str | None]:
    """A page of endpoints, oldest first, and the next cursor."""
    after = decode_cursor(cursor, _OLDEST, _cursor_key) if cursor is not None else None
    found = await repository.list_endpoints(session, after, limit + 1)
    if len(found) <= limit:
        return found, None
    last = found[limit - 1]
    return found[:limit], encode_cursor(_OLDEST, last.created_at, last.id)


async def update_endpoint(
    session: AsyncSession, endpoint_id: uuid.UUID, changes: EndpointChanges, *, allow_private: bool
) -> WebhookEndpoint:
    """Change an endpoint. Enabling a disabled one clears its failure streak and makes its
    pending deliveries due at once."""
    endpoint = await get_endpoint(session, endpoint_id, for_update=True)
    if changes.url is not None:
        await resolve_allowed(changes.url, allow_private=allow_private)
        endpoint.url = changes.url
    if changes.events is not None:
        endpoint.events = _checked_events(changes.events)
    if changes.description is not None:
        endpoint.description = changes.description
    if changes.is_active is True and not endpoint.is_active:
        endpoint.is_active = True
        endpoint.failing_since = endpoint.disabled_at = endpoint.disabled_reason = None
        for delivery_id in await repository.reschedule_pending(session, endpoint.id):
            defer(session, DELIVER_TASK, str(delivery_id))
    elif changes.is_active is False and endpoint.is_active:
        endpoint.is_active = False
        endpoint.disabled_at, endpoint.disabled_reason = utcnow(), "disabled by staff"
    await session.flush()
    await session.refresh(endpoint)  # the database's updated_at
    return endpoint


async def delete_endpoint(session: AsyncSession, endpoint_id: uuid.UUID) -> None:
    """Delete an endpoint and its delivery log; 404 if there is none."""
    if not await repository.delete_endpoint(session, endpoint_id):
        raise NotFound("No such webhook endpoint.", code="webhook_not_found")


async def rotate_secret(
    session: AsyncSession, endpoint_id: uuid.UUID, *, overlap: dt.timedelta
) -> WebhookEndpoint:
    """A new secret for an endpoint; the old one keeps signing (a second ``v1``) for
    ``overlap``, so the receiver can switch without missing a delivery."""
    endpoint = await get_endpoint(session, endpoint_id, for_update=True)
    endpoint.previous_secret, endpoint.secret = endpoint.secret, new_secret()
    endpoint.previous_secret_expires_at = utcnow() + overlap
    await session.flush()
    await session.refresh(endpoint)  # the database's updated_at
    return endpoint


async def send_test(session: AsyncSession, endpoint_id: uuid.UUID) -> WebhookDelivery:
    """Queue a ``webhook.test`` event for an endpoint (whatever it subscribes to)."""
    endpoint = await get_endpoint(session, endpoint_id)
    now = utcnow()
    event_id = f"evt_test_{uuid.uuid4().hex}"
    body = _body(event_id, events.TEST_EVENT, now, {"endpoint_id": str(endpoint.id)})
    [delivery_id] = await repository.insert_deliveries(
        session, [_delivery_row(endpoint.id, event_id, events.TEST_EVENT, 0, body, now)]
    )
    defer(session, DELIVER_TASK, str(delivery_id))
    return await _delivery(session, endpoint.id, delivery_id)


async def fan_out(session: AsyncSession, batch: Sequence[OutboxEvent]) -> None:
    """Write a delivery for each event of a relayed batch and each endpoint subscribed to its
    type, and queue them after commit (the outbox relay's consumer)."""
    relevant = [event for event in batch if event.topic in events.EVENT_TYPES]
    if not relevant:
        return
    endpoints = await repository.active_endpoints(session)
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for event in relevant:
        event_type = events.EVENT_TYPES[event.topic]
        event_id = f"evt_{event.id}"
        body = _body(event_id, event_type, event.created_at, event.payload)
        rows.extend(
            _delivery_row(endpoint.id, event_id, event_type, event.id, body, now)
            for endpoint in endpoints
            if events.wants(endpoint.events, event_type)
        )
    for delivery_id in await repository.insert_deliveries(session, rows):
        defer(session, DELIVER_TASK, str(delivery_id))


async def replay(
    session: AsyncSession, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery:
    """Send a delivery again (same event id and body, a fresh signature), whatever came of it
    before; its attempts so far stay in the log."""
    await get_endpoint(session, endpoint_id)
    delivery = await _delivery(session, endpoint_id, delivery_id)
    delivery.status = DeliveryStatus.PENDING
    delivery.next_attempt_at = utcnow()
    delivery.retry_until = None  # the retry window starts again at the next attempt
    await session.flush()
    defer(session, DELIVER_TASK, str(delivery.id))
    return delivery


async def list_deliveries(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    *,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> tuple[list[DeliveryLog], str | None]:
    """A page of an endpoint's deliveries with their attempts, newest first; the next cursor."""
    await get_endpoint(session, endpoint_id)
    before = decode_cursor(cursor, _NEWEST, _cursor_key) if cursor is not None else None
    found = await repository.list_deliveries(session, endpoint_id, before, limit + 1)
    page = found[:limit]
    attempts = await repository.attempts_of(session, [delivery.id for delivery in page])
    logs = [DeliveryLog(delivery, attempts[delivery.id]) for delivery in page]
    if len(found) <= limit:
        return logs, None
    last = page[-1]
    return logs, encode_cursor(_NEWEST, last.created_at, last.id)


async def schedule_due(session: AsyncSession, batch: int) -> int:
    """Queue a delivery task for every due delivery (retries, and tasks lost on the way);
    how many were queued."""
    due = await repository.due_delivery_ids(session, batch)
    for delivery_id in due:
        defer(session, DELIVER_TASK, str(delivery_id))
    return len(due)


def _body(event_id: str, event_type: str, created: dt.datetime, data: Any) -> dict[str, Any]:
    """The JSON body partners receive."""
    return {"id": event_id, "type": event_type, "created": int(created.timestamp()), "data": data}


def _delivery_row(
    endpoint_id: uuid.UUID,
    event_id: str,
    event_type: str,
    sequence: int,
    body: dict[str, Any],
    now: dt.datetime,
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "endpoint_id": endpoint_id,
        "event_id": event_id,
        "event_type": event_type,
        "sequence": sequence,
        "is_ordered": events.is_ordered(event_type),
        "body": body,
        "status": DeliveryStatus.PENDING,
        "next_attempt_at": now,
        "created_at": now,
    }


def _checked_events(subscribed: list[str]) -> list[str]:
    """The subscribed types, deduplicated; 422 ``unknown_event_type`` for one not offered."""
    unknown = sorted(set(subscribed) - events.SUBSCRIBABLE - {events.ALL_EVENTS})
    if unknown:
        raise ValidationFailed(
            f"Unknown event types: {', '.join(unknown)}.",
            code="unknown_event_type",
            known=sorted(events.SUBSCRIBABLE),
        )
    return sorted(set(subscribed))


async def _delivery(
    session: AsyncSession, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery:
    delivery = await repository.get_delivery(session, endpoint_id, delivery_id)
    if delivery is None:
        raise NotFound("No such delivery.", code="delivery_not_found")
    return delivery


def _cursor_key(created_at: Any, row_id: Any) -> tuple[dt.datetime, uuid.UUID]:
    return dt.datetime.fromisoformat(created_at), uuid.UUID(str(row_id))
