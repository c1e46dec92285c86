"""Request and response models of price watch's API."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from agora.core.money import Money

Url = Annotated[str, Field(min_length=8, max_length=2048)]
Rule = Annotated[str, Field(min_length=1, max_length=500)]
MAX_TARGETS_PER_REQUEST = 1000


class SiteRules(BaseModel):
    """CSS (``.price::text``) or XPath (``//span[@itemprop='price']``) rules for pages without
    structured data; ``currency`` may also be a fixed ISO code."""

    model_config = ConfigDict(extra="forbid")

    price: Rule | None = None
    currency: Rule | None = None
    availability: Rule | None = None


class SiteCreate(BaseModel):
    """A site to watch and how to crawl it."""

    model_config = ConfigDict(extra="forbid")

    base_url: Url
    delay_ms: Annotated[int, Field(ge=0, le=3_600_000)] = 1000
    max_concurrency: Annotated[int, Field(ge=1, le=64)] = 1
    recrawl_min_s: Annotated[int, Field(ge=1, le=30 * 86400)] = 3600
    recrawl_max_s: Annotated[int, Field(ge=1, le=365 * 86400)] = 86400
    rules: SiteRules = SiteRules()


class SiteResponse(BaseModel):
    """A watched site."""

    id: uuid.UUID
    host: str
    base_url: str
    delay_ms: int
    max_concurrency: int
    recrawl_min_s: int
    recrawl_max_s: int
    rules: SiteRules
    created_at: dt.datetime


class TargetCreate(BaseModel):
    """A product page to watch, optionally matched to one of our variants."""

    model_config = ConfigDict(extra="forbid")

    url: Url
    variant_id: uuid.UUID | None = None


TargetsCreate = (
    TargetCreate
    | Annotated[list[TargetCreate], Field(min_length=1, max_length=MAX_TARGETS_PER_REQUEST)]
)


class TargetResponse(BaseModel):
    """A watched page and its last reading."""

    id: uuid.UUID
    site_id: uuid.UUID
    url: str
    variant_id: uuid.UUID | None
    price_amount: int | None
    currency: str | None
    in_stock: bool | None
    changed_at: dt.datetime | None


class TargetList(BaseModel):
    """The pages of a request that named several."""

    items: list[TargetResponse]


class PriceChangeResponse(BaseModel):
    """One recorded change of a page's reading."""

    price_amount: int | None
    currency: str | None
    in_stock: bool | None
    observed_at: dt.datetime


class TargetDetailResponse(TargetResponse):
    """A watched page with its crawl state and change history (newest first)."""

    state: str
    last_fetched_at: dt.datetime | None
    next_due_at: dt.datetime | None
    history: list[PriceChangeResponse]


class DiscoverRequest(BaseModel):
    """Which sitemap URLs are product pages: a regular expression searched in each URL."""

    model_config = ConfigDict(extra="forbid")

    pattern: Annotated[str, Field(min_length=1, max_length=500)] = ".*"


class DiscoverResponse(BaseModel):
    """What the sitemaps listed, how many URLs matched, how many were new."""

    listed: int
    matched: int
    added: int


class UndercutResponse(BaseModel):
    """A page priced below our variant, and by how much."""

    target_id: uuid.UUID
    url: str
    variant_id: uuid.UUID
    price: Money
    our_price: Money
    gap: Money
    in_stock: bool | None
    changed_at: dt.datetime | None


class UndercutList(BaseModel):
    """Undercuts, widest gap first."""

    items: list[UndercutResponse]
