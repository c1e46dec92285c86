"""Request and response bodies of the inventory API."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

MAX_STOCK_QUANTITY = 1_000_000_000


Clock = Annotated[str, Field(pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
Line = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class OpeningInterval(BaseModel):
    """Open from ``opens`` to ``closes`` (local time); a ``closes`` not after ``opens`` runs
    past midnight, ``24:00`` is the end of the day."""

    model_config = ConfigDict(extra="forbid")

    opens: Clock
    closes: Clock


class PickupAddress(BaseModel):
    """The street address of a pickup point (``country``: ISO 3166-1 alpha-2)."""

    model_config = ConfigDict(extra="forbid")

    line1: Line
    line2: Line | None = None
    city: Line
    region: Line | None = None
    postal_code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=20)]
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$", to_upper=True)]


class PickupIn(BaseModel):
    """Where a pickup point is and when it opens (per weekday, in ``time_zone``)."""

    model_config = ConfigDict(extra="forbid")

    latitude: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
    longitude: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
    address: PickupAddress
    opening_hours: dict[Weekday, list[OpeningInterval]]
    time_zone: Annotated[str, Field(min_length=1, max_length=64, examples=["Europe/Paris"])]

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class PickupOut(BaseModel):
    """A warehouse's pickup point details."""

    model_config = ConfigDict(from_attributes=True)

    latitude: float
    longitude: float
    address: dict[str, Any]
    opening_hours: dict[str, Any]
    time_zone: str


class WarehouseIn(BaseModel):
    """A warehouse to create."""

    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, Field(min_length=1, max_length=50, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    is_default: bool = False
    pickup: PickupIn | None = None


class WarehouseOut(BaseModel):
    """A warehouse."""

    id: uuid.UUID
    code: str
    name: str
    is_default: bool
    is_pickup_point: bool
    pickup: PickupOut | None = None


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


class PickupPointOut(BaseModel):
    """A pickup point near the buyer."""

    id: uuid.UUID
    code: str
    name: str
    pickup: PickupOut
    distance_m: int
    is_open: bool
    in_stock: bool | None = Field(
        description="Whether the variant asked about has the quantity here (null if none asked)"
    )


class PickupPointList(BaseModel):
    """Pickup points, nearest first (one page: ``limit`` of them)."""

    items: list[PickupPointOut]
    next_cursor: str | None = None


class ReservationLine(BaseModel):
    """Units of a variant to hold."""

    model_config = ConfigDict(extra="forbid")

    variant_id: uuid.UUID
    quantity: Annotated[int, Field(gt=0, le=MAX_STOCK_QUANTITY, strict=True)]


class ReservationIn(BaseModel):
    """Units to hold for a reference, all or nothing (in one warehouse when named)."""

    model_config = ConfigDict(extra="forbid")

    reference_id: uuid.UUID
    lines: Annotated[list[ReservationLine], Field(min_length=1, max_length=100)]
    warehouse_id: uuid.UUID | None = None


class ReleaseOut(BaseModel):
    """How many units a release made available again."""

    units: int
