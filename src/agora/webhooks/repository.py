"""Every query on the webhook tables."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from agora.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint

_PENDING = DeliveryStatus.PENDING


async def get_endpoint(session: AsyncSession, endpoint_id: uuid.UUID) -> WebhookEndpoint | None:
    """An endpoint by id."""
    return await session.get(WebhookEndpoint, endpoint_id, populate_existing=True)


async def lock_endpoint(session: AsyncSession, endpoint_id: uuid.UUID) -> WebhookEndpoint | None:
    """An endpoint by id, locked until the transaction ends (its failure streak is updated)."""
    return await session.get(
        WebhookEndpoint, endpoint_id, with_for_update=True, populate_existing=True
    )


async def list_endpoints(
    session: AsyncSession, after: tuple[dt.datetime, uuid.UUID] | None, limit: int
) -> Sequence[WebhookEndpoint]:
    """Endpoints, oldest first, after the (created_at, id) of a cursor."""
    query = select(WebhookEndpoint).order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    if after is not None:
        query = query.where(tuple_(WebhookEndpoint.created_at, WebhookEndpoint.id) > after)
    return (await session.scalars(query.limit(limit))).all()


async def active_endpoints(session: AsyncSession) -> Sequence[WebhookEndpoint]:
    """Every endpoint that receives events."""
    return (await session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.is_active))).all()


async def delete_endpoint(session: AsyncSession, endpoint_id: uuid.UUID) -> bool:
    """Delete an endpoint with its deliveries; whether it existed."""
    result = await session.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def insert_deliveries(session: AsyncSession, rows: list[dict[str, Any]]) -> list[uuid.UUID]:
    """New deliveries in one statement; one already made for its (endpoint, event) is skipped.
    The ids of those inserted."""
    if not rows:
        return []
    inserted = await session.scalars(
        insert(WebhookDelivery)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["endpoint_id", "event_id"])
        .returning(WebhookDelivery.id)
    )
    return list(inserted)


async def get_delivery(
    session: AsyncSession, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery | None:
    """A delivery of an endpoint, locked (a replay and an attempt do not interleave)."""
    return await session.scalar(
        select(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def lock_due_delivery(
    session: AsyncSession, delivery_id: uuid.UUID
) -> WebhookDelivery | None:
    """A pending delivery whose attempt is due, locked; None if it is not due, done, or being
    taken by another worker right now."""
    return await session.scalar(
        select(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == _PENDING,
            WebhookDelivery.next_attempt_at <= func.now(),
        )
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )


async def earliest_pending_ordered(
    session: AsyncSession, endpoint_id: uuid.UUID
) -> WebhookDelivery | None:
    """The pending ordered delivery of an endpoint that comes first (the one others wait for)."""
    return await session.scalar(
        select(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.is_ordered,
            WebhookDelivery.status == _PENDING,
        )
        .order_by(WebhookDelivery.sequence, WebhookDelivery.created_at)
        .limit(1)
    )


async def add_attempt(session: AsyncSession, attempt: WebhookAttempt) -> None:
    """Log one attempt."""
    session.add(attempt)
    await session.flush()


async def list_deliveries(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    before: tuple[dt.datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[WebhookDelivery]:
    """An endpoint's deliveries, newest first, before the (created_at, id) of a cursor."""
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
    )
    if before is not None:
        query = query.where(tuple_(WebhookDelivery.created_at, WebhookDelivery.id) < before)
    return (await session.scalars(query.limit(limit))).all()


async def attempts_of(
    session: AsyncSession, delivery_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[WebhookAttempt]]:
    """The attempts of each delivery, oldest first, in one query."""
    found: dict[uuid.UUID, list[WebhookAttempt]] = {delivery_id: [] for delivery_id in delivery_ids}
    if delivery_ids:
        attempts = await session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(list(delivery_ids)))
            .order_by(WebhookAttempt.id)
        )
        for attempt in attempts:
            found[attempt.delivery_id].append(attempt)
    return found


async def due_delivery_ids(session: AsyncSession, limit: int) -> list[uuid.UUID]:
    """Pending deliveries of active endpoints whose attempt is due, longest waiting first."""
    found = await session.scalars(
        select(WebhookDelivery.id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(
            WebhookDelivery.status == _PENDING,
            WebhookDelivery.next_attempt_at <= func.now(),
            WebhookEndpoint.is_active,
        )
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
    )
    return list(found)


async def reschedule_pending(session: AsyncSession, endpoint_id: uuid.UUID) -> list[uuid.UUID]:
    """Make every pending delivery of an endpoint due now (it was re-enabled); their ids."""
    found = await session.scalars(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == _PENDING)
        .values(next_attempt_at=func.now())
        .returning(WebhookDelivery.id)
    )
    return list(found)


async def lock_pending_delivery(
    session: AsyncSession, delivery_id: uuid.UUID
) -> WebhookDelivery | None:
    """A pending delivery, locked, due or not (its attempt's outcome is being recorded)."""
    return await session.scalar(
        select(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == _PENDING)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
