"""Request and response bodies of the webhooks API."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, StringConstraints

EventType = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
Url = Annotated[AnyHttpUrl, Field(max_length=2000)]


class EndpointIn(BaseModel):
    """An endpoint to create: its URL and the event types it receives (``["*"]`` for all)."""

    model_config = ConfigDict(extra="forbid")

    url: Url
    events: Annotated[list[EventType], Field(min_length=1, max_length=50)]
    description: Description | None = None


class EndpointPatch(BaseModel):
    """Changes to an endpoint; ``is_active: true`` re-enables a disabled one."""

    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    events: Annotated[list[EventType], Field(min_length=1, max_length=50)] | None = None
    description: Description | None = None
    is_active: bool | None = None


class EndpointOut(BaseModel):
    """An endpoint (never its secret, which is shown once)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    events: list[str]
    description: str | None
    is_active: bool
    failing_since: dt.datetime | None
    disabled_at: dt.datetime | None
    disabled_reason: str | None
    previous_secret_expires_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class EndpointCreated(EndpointOut):
    """A new endpoint with its signing secret: store it now, it is not shown again."""

    secret: str


class SecretOut(BaseModel):
    """A rotated endpoint's new secret; the previous one signs too until it expires."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    secret: str
    previous_secret_expires_at: dt.datetime | None


class EndpointPage(BaseModel):
    """A page of endpoints, oldest first."""

    items: list[EndpointOut]
    next_cursor: str | None = None


class AttemptOut(BaseModel):
    """One HTTP attempt of a delivery."""

    model_config = ConfigDict(from_attributes=True)

    attempted_at: dt.datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    response_body: str | None
    is_success: bool


class DeliveryOut(BaseModel):
    """A delivery: the event sent, where it stands, and every attempt."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    event_id: str
    event_type: str
    status: str
    attempt_count: int
    next_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None
    created_at: dt.datetime
    body: dict[str, Any]
    attempts: list[AttemptOut] = []


class DeliveryPage(BaseModel):
    """A page of deliveries, newest first."""

    items: list[DeliveryOut]
    next_cursor: str | None = None
