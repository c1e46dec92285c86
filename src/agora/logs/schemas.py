"""Request bodies of the log and alert API (responses are ``results.py`` records)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class KeyCreate(BaseModel):
    """A new ingest key, named after the shipper that will use it."""

    name: str = Field(min_length=1, max_length=100)
