"""Request bodies of the log and alert API (responses are ``results.py`` records)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agora.logs.models import AlertMetric, AlertState


class KeyCreate(BaseModel):
    """A new ingest key, named after the shipper that will use it."""

    name: str = Field(min_length=1, max_length=100)


class AlertRuleFields(BaseModel):
    """The fields of a rule that may change."""

    name: str = Field(min_length=1, max_length=200)
    q: str = Field(default="", max_length=2000)
    metric: AlertMetric
    op: Literal[">", "<"]
    threshold: float
    window_s: int = Field(ge=10, le=86400)
    for_s: int = Field(default=0, ge=0, le=86400)
    hysteresis: float = Field(default=0.1, ge=0, le=1)
    webhook_url: str = Field(min_length=1, max_length=2000)


class AlertRuleCreate(AlertRuleFields):
    """A new rule; without ``webhook_secret`` one is generated and shown once."""

    webhook_secret: str | None = Field(default=None, min_length=16, max_length=200)


class AlertRulePatch(BaseModel):
    """Changes to a rule: only the fields sent are changed."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    q: str | None = Field(default=None, max_length=2000)
    metric: AlertMetric | None = None
    op: Literal[">", "<"] | None = None
    threshold: float | None = None
    window_s: int | None = Field(default=None, ge=10, le=86400)
    for_s: int | None = Field(default=None, ge=0, le=86400)
    hysteresis: float | None = Field(default=None, ge=0, le=1)
    webhook_url: str | None = Field(default=None, min_length=1, max_length=2000)
    webhook_secret: str | None = Field(default=None, min_length=16, max_length=200)


class AlertRuleResponse(AlertRuleFields):
    """A rule with its current state (never its secret)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    state: AlertState
    last_value: float | None
    evaluated_at: dt.datetime | None


class AlertRuleCreated(AlertRuleResponse):
    """A rule just created, with its webhook secret, shown this once."""

    webhook_secret: str


class AlertEpisodeResponse(BaseModel):
    """One episode of a rule: when it started, fired and resolved, and its values."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    rule_id: uuid.UUID
    status: AlertState
    started_at: dt.datetime
    fired_at: dt.datetime | None
    resolved_at: dt.datetime | None
    value: float
    peak_value: float
