"""Staff endpoints of merchant webhooks: endpoints, secrets, test events, the delivery log."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, Response

from agora.core.dependencies import SessionDep, SettingsDep
from agora.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from agora.core.security import StaffPrincipal
from agora.webhooks import service
from agora.webhooks.models import WebhookAttempt, WebhookDelivery
from agora.webhooks.schemas import (
    AttemptOut,
    DeliveryOut,
    DeliveryPage,
    EndpointCreated,
    EndpointIn,
    EndpointOut,
    EndpointPage,
    EndpointPatch,
    SecretOut,
)

router = APIRouter(tags=["webhooks"])
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.post("/webhooks", status_code=201, summary="Create a webhook endpoint")
async def create_endpoint(
    body: EndpointIn,
    _: StaffPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
) -> EndpointCreated:
    """A new endpoint and its signing secret, shown only now. 422 ``unsafe_target`` for a URL
    on a private, loopback or link-local address; 422 ``unknown_event_type``."""
    endpoint = await service.create_endpoint(
        session,
        str(body.url),
        body.events,
        description=body.description,
        allow_private=settings.webhook_allow_private,
    )
    response.headers["Location"] = f"/api/v1/webhooks/{endpoint.id}"
    return EndpointCreated.model_validate(endpoint)


@router.get("/webhooks", summary="List webhook endpoints")
async def list_endpoints(
    _: StaffPrincipal,
    session: SessionDep,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> EndpointPage:
    """Endpoints, oldest first."""
    found, next_cursor = await service.list_endpoints(session, cursor=cursor, limit=limit)
    return EndpointPage(
        items=[EndpointOut.model_validate(item) for item in found], next_cursor=next_cursor
    )


@router.get("/webhooks/{endpoint_id}", summary="A webhook endpoint")
async def get_endpoint(
    endpoint_id: uuid.UUID, _: StaffPrincipal, session: SessionDep
) -> EndpointOut:
    """One endpoint."""
    return EndpointOut.model_validate(await service.get_endpoint(session, endpoint_id))


@router.patch("/webhooks/{endpoint_id}", summary="Change a webhook endpoint")
async def update_endpoint(
    endpoint_id: uuid.UUID,
    body: EndpointPatch,
    _: StaffPrincipal,
    session: SessionDep,
    settings: SettingsDep,
) -> EndpointOut:
    """Change the URL, events or description; ``is_active`` disables or re-enables it."""
    changes = service.EndpointChanges(
        url=None if body.url is None else str(body.url),
        events=body.events,
        description=body.description,
        is_active=body.is_active,
    )
    endpoint = await service.update_endpoint(
        session, endpoint_id, changes, allow_private=settings.webhook_allow_private
    )
    return EndpointOut.model_validate(endpoint)


@router.delete("/webhooks/{endpoint_id}", status_code=204, summary="Delete a webhook endpoint")
async def delete_endpoint(endpoint_id: uuid.UUID, _: StaffPrincipal, session: SessionDep) -> None:
    """Delete an endpoint and its delivery log."""
    await service.delete_endpoint(session, endpoint_id)


@router.post("/webhooks/{endpoint_id}/rotate-secret", summary="Rotate an endpoint's secret")
async def rotate_secret(
    endpoint_id: uuid.UUID, _: StaffPrincipal, session: SessionDep, settings: SettingsDep
) -> SecretOut:
    """A new secret, shown once; deliveries carry a signature by the old one as well until
    ``previous_secret_expires_at`` (24 h by default)."""
    overlap = dt.timedelta(seconds=settings.webhook_secret_overlap)
    return SecretOut.model_validate(
        await service.rotate_secret(session, endpoint_id, overlap=overlap)
    )


@router.post(
    "/webhooks/{endpoint_id}/test", status_code=202, summary="Send a test event to an endpoint"
)
async def send_test(endpoint_id: uuid.UUID, _: StaffPrincipal, session: SessionDep) -> DeliveryOut:
    """Queue a ``webhook.test`` event; follow it in the delivery log."""
    return _delivery_out(await service.send_test(session, endpoint_id))


@router.get("/webhooks/{endpoint_id}/deliveries", summary="An endpoint's delivery log")
async def list_deliveries(
    endpoint_id: uuid.UUID,
    _: StaffPrincipal,
    session: SessionDep,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> DeliveryPage:
    """Deliveries, newest first, each with every attempt made (status, time, answer)."""
    logs, next_cursor = await service.list_deliveries(
        session, endpoint_id, cursor=cursor, limit=limit
    )
    return DeliveryPage(
        items=[_delivery_out(log.delivery, log.attempts) for log in logs],
        next_cursor=next_cursor,
    )


@router.post(
    "/webhooks/{endpoint_id}/deliveries/{delivery_id}/replay",
    status_code=202,
    summary="Send a delivery again",
)
async def replay(
    endpoint_id: uuid.UUID, delivery_id: uuid.UUID, _: StaffPrincipal, session: SessionDep
) -> DeliveryOut:
    """Queue the same event (same id and body, fresh signature) for another round of attempts."""
    return _delivery_out(await service.replay(session, endpoint_id, delivery_id))


def _delivery_out(
    delivery: WebhookDelivery, attempts: Sequence[WebhookAttempt] = ()
) -> DeliveryOut:
    out = DeliveryOut.model_validate(delivery, from_attributes=True)
    out.attempts = [AttemptOut.model_validate(attempt) for attempt in attempts]
    return out
