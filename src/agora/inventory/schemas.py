"""Request and response bodies of the inventory API."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

MAX_STOCK_QUANTITY = 1_000_000_000


class WarehouseIn(BaseModel):
    """A warehouse to create."""

    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, Field(min_length=1, max_length=50, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    is_default: bool = False


class WarehouseOut(BaseModel):
    """A warehouse."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    name: str
    is_default: bool


class WarehouseList(BaseModel):
    """Every warehouse (a short list: never more than one page)."""

    items: list[WarehouseOut]
    next_cursor: str | None = None


class StockIn(BaseModel):
    """Units on hand of a variant in a warehouse (the default one when omitted)."""

    model_config = ConfigDict(extra="forbid")

    quantity: Annotated[int, Field(ge=0, le=MAX_STOCK_QUANTITY, strict=True)]
    warehouse_id: uuid.UUID | None = None


class StockLevelOut(BaseModel):
    """A variant's units in one warehouse."""

    model_config = ConfigDict(from_attributes=True)

    warehouse_id: uuid.UUID
    quantity: int
    reserved: int
    allocated: int
    available: int


class VariantStockOut(BaseModel):
    """A variant's stock over every warehouse."""

    model_config = ConfigDict(from_attributes=True)

    variant_id: uuid.UUID
    available: int
    levels: list[StockLevelOut]
