"""Response models of the crawler's API."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel


class HostStatsResponse(BaseModel):
    """One host's figures."""

    host: str
    queued: int
    leased: int
    fetched: int
    not_modified: int
    errors: int
    next_allowed_start_at: dt.datetime | None


class CrawlStatsResponse(BaseModel):
    """Every host, and the pages fetched per second over the last ten seconds."""

    hosts: list[HostStatsResponse]
    pages_per_second: float
