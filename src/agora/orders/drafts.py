"""An order being placed, before it is stored: plain records, not ORM objects.

Checkout builds the order with its lines, prices it and writes it in one statement
(``repository.insert_order``); nothing reads it back through the session. As ORM objects, the
order and its lines paid for instrumentation they never used: every attribute set or read went
through SQLAlchemy's attribute events, about 200 of a checkout's 3,800 Python calls. The answer
(``OrderOut``) reads the same attributes, and the same amounts (``OrderAmounts``,
``LineAmounts``), from a stored order or from one of these.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from agora.orders.models import LineAmounts, OrderAmounts, OrderStatus


@dataclass(slots=True)
class NewOrderLine(LineAmounts):
    """A line of an order being placed, with its frozen unit price."""

    id: uuid.UUID
    order_id: uuid.UUID
    position: int
    variant_id: uuid.UUID | None
    sku: str
    product_name: str
    quantity: int
    unit_price_amount: int
    currency: str


@dataclass(slots=True)
class NewOrder(OrderAmounts):
    """An order being placed: its columns, set by checkout as it prices the order, and those
    the database assigns (number, timestamps) once it is written."""

    id: uuid.UUID
    user_id: uuid.UUID
    lines: list[NewOrderLine] = field(default_factory=list)
    status: OrderStatus = OrderStatus.PENDING_PAYMENT
    currency: str = ""
    subtotal_amount: int = 0
    shipping_amount: int = 0
    discount_amount: int = 0
    total_amount: int = 0
    shipping_method: str | None = None
    voucher_id: uuid.UUID | None = None
    voucher_code: str | None = None
    pickup_point_id: uuid.UUID | None = None
    shipping_address: dict[str, Any] | None = None
    payment_due_at: dt.datetime | None = None
    paid_at: dt.datetime | None = None
    shipped_at: dt.datetime | None = None
    cancelled_at: dt.datetime | None = None
    cancel_reason: str | None = None
    number: int | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
