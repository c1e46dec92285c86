"""Request and response bodies of the cart API."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from agora.core.money import Money

Quantity = Annotated[int, Field(ge=1, le=99, strict=True)]


class CartItemIn(BaseModel):
    """Units of a variant to add to a cart."""

    model_config = ConfigDict(extra="forbid")

    variant_id: uuid.UUID
    quantity: Quantity = 1


class CartItemUpdate(BaseModel):
    """The new quantity of a cart line."""

    model_config = ConfigDict(extra="forbid")

    quantity: Quantity


class CartLineOut(BaseModel):
    """A cart line at the variant's current price."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    variant_id: uuid.UUID
    sku: str
    product_name: str
    quantity: int
    unit_price: Money
    total: Money


class CartOut(BaseModel):
    """A cart. ``token`` is sent once, when an anonymous cart is created: send it back in the
    ``X-Cart-Token`` header to use the cart, and once signed in to merge it into yours."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    status: str
    items: list[CartLineOut] = Field(validation_alias="lines")
    subtotal: Money | None
    token: str | None = None
