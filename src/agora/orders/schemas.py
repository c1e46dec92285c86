"""Request and response bodies of the orders API."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from agora.core.money import CurrencyCode, Money

OrderStatusName = Literal[
    "pending_payment", "paid", "fulfilled", "shipped", "completed", "cancelled", "refunded"
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
OptionalText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None
Code = Annotated[str, StringConstraints(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9_-]+$")]
Amount = Annotated[int, Field(ge=0, le=10**12, strict=True)]


class Address(BaseModel):
    """A postal address; ``country`` is ISO 3166-1 alpha-2."""

    model_config = ConfigDict(extra="forbid")

    name: Text
    line1: Text
    line2: OptionalText = None
    city: Text
    region: OptionalText = None
    postal_code: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)
    ]
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$", to_upper=True)]
    phone: Annotated[str, StringConstraints(pattern=r"^\+?[0-9 ()-]{4,30}$")] | None = None


class OrderIn(BaseModel):
    """Checkout of a cart."""

    model_config = ConfigDict(extra="forbid")

    cart_id: uuid.UUID
    shipping_address: Address
    shipping_method: Code | None = None
    voucher_code: Code | None = None
    pickup_point_id: uuid.UUID | None = Field(
        default=None, description="Collect at this pickup point: no shipping charge"
    )


class OrderLineOut(BaseModel):
    """A line of an order at its frozen price."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    variant_id: uuid.UUID | None
    sku: str
    product_name: str
    quantity: int
    unit_price: Money
    total: Money


class OrderOut(BaseModel):
    """An order: its lines, totals and where it stands."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    number: int
    status: OrderStatusName
    lines: list[OrderLineOut]
    subtotal: Money
    shipping: Money
    discount: Money
    total: Money
    shipping_method: str | None
    voucher_code: str | None
    pickup_point_id: uuid.UUID | None
    shipping_address: Address | None = Field(
        description="Where to ship; null for an order bought without one (a flash-sale "
        "purchase) until the buyer sets it"
    )
    payment_due_at: dt.datetime
    paid_at: dt.datetime | None
    shipped_at: dt.datetime | None
    cancelled_at: dt.datetime | None
    cancel_reason: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class OrderPage(BaseModel):
    """A page of orders, newest first."""

    items: list[OrderOut]
    next_cursor: str | None = None


class OrderStatusIn(BaseModel):
    """The state to move an order to (staff)."""

    model_config = ConfigDict(extra="forbid")

    status: OrderStatusName


class ShippingMethodIn(BaseModel):
    """A shipping method: flat (``base``) or by weight (``base`` + ``per_kg`` per started kg),
    free from ``free_over`` of merchandise when set."""

    model_config = ConfigDict(extra="forbid")

    code: Code
    name: Text
    kind: Literal["flat", "weight"]
    currency: CurrencyCode
    base_amount: Amount
    per_kg_amount: Amount = 0
    free_over_amount: Amount | None = None


class ShippingMethodOut(BaseModel):
    """A shipping method."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    kind: str
    currency: str
    base_amount: int
    per_kg_amount: int
    free_over_amount: int | None


class ShippingMethodList(BaseModel):
    """The active shipping methods (a short list: one page)."""

    items: list[ShippingMethodOut]
    next_cursor: str | None = None


class VoucherIn(BaseModel):
    """A voucher: ``value`` is a percentage (1-100) or an amount in minor units of ``currency``."""

    model_config = ConfigDict(extra="forbid")

    code: Code
    kind: Literal["percentage", "fixed"]
    value: Annotated[int, Field(gt=0, le=10**12, strict=True)]
    currency: CurrencyCode | None = None
    min_subtotal_amount: Amount = 0
    usage_limit: Annotated[int, Field(gt=0, le=10**9)] | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None


class VoucherOut(BaseModel):
    """A voucher and how often it was used."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    kind: str
    value: int
    currency: str | None
    min_subtotal_amount: int
    usage_limit: int | None
    used_count: int
    starts_at: dt.datetime | None
    ends_at: dt.datetime | None
    is_active: bool


class VoucherList(BaseModel):
    """Every voucher, newest first."""

    items: list[VoucherOut]
    next_cursor: str | None = None
