"""Request and response bodies of the flash-sale API."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from agora.core.money import Money
from agora.orders.schemas import Address

MAX_SALE_QUANTITY = 1_000_000
MAX_PURCHASE_QUANTITY = 100


class FlashSaleCreate(BaseModel):
    """A sale staff schedule: a variant at ``price``, ``quantity`` units, a window, a limit."""

    model_config = ConfigDict(extra="forbid")

    variant_id: uuid.UUID
    warehouse_id: uuid.UUID | None = Field(
        default=None, description="Where the units are set aside; the default warehouse if omitted."
    )
    price: Money
    quantity: Annotated[int, Field(gt=0, le=MAX_SALE_QUANTITY, strict=True)]
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    per_user_limit: Annotated[int, Field(gt=0, le=MAX_PURCHASE_QUANTITY, strict=True)] = 1

    @model_validator(mode="after")
    def _window_is_sane(self) -> FlashSaleCreate:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.ends_at <= dt.datetime.now(dt.UTC):
            raise ValueError("ends_at must be in the future")
        return self


class FlashSaleResponse(BaseModel):
    """A sale with the units left to buy right now."""

    id: uuid.UUID
    variant_id: uuid.UUID
    price: Money
    quantity: int
    remaining: int
    per_user_limit: int
    starts_at: dt.datetime
    ends_at: dt.datetime


class PurchaseRequest(BaseModel):
    """How many units to buy, and where the order made of the ticket ships to."""

    model_config = ConfigDict(extra="forbid")

    quantity: Annotated[int, Field(gt=0, le=MAX_PURCHASE_QUANTITY, strict=True)] = 1
    shipping_address: Address | None = Field(
        default=None,
        description="Checkout's address shape; kept with the ticket and copied to its order.",
    )


class PurchaseAccepted(BaseModel):
    """The buyer holds a ticket: the worker turns it into an order in ``pending_payment``."""

    ticket_id: uuid.UUID


class TicketResponse(BaseModel):
    """Where a ticket stands: ``queued``, ``ordered`` (with its order) or ``rejected`` (why)."""

    ticket_id: uuid.UUID
    sale_id: uuid.UUID
    status: str
    quantity: int
    order_id: uuid.UUID | None = None
    reason: str | None = None
