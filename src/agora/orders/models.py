"""The tables of orders, their lines, shipping methods and vouchers.

An order freezes everything money depends on at checkout (unit prices, shipping, discount), so
later catalog changes never alter it; CHECK constraints keep its totals consistent.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any, Protocol

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from agora.core.db import Base, TimestampMixin, enum_column
from agora.core.money import Money


class OrderStatus(enum.StrEnum):
    """Where an order stands; ``orders.service.TRANSITIONS`` lists the legal moves."""

    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    FULFILLED = "fulfilled"
    SHIPPED = "shipped"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


class ShippingKind(enum.StrEnum):
    """A flat price, or a base price plus a price per started kilogram."""

    FLAT = "flat"
    WEIGHT = "weight"


class VoucherKind(enum.StrEnum):
    """A percentage of the subtotal, or a fixed amount off it."""

    PERCENTAGE = "percentage"
    FIXED = "fixed"


class ShippingMethod(TimestampMixin, Base):
    """A way to ship an order, and how it is priced."""

    __tablename__ = "shipping_methods"
    __table_args__ = (
        CheckConstraint("base_amount >= 0", name="base_not_negative"),
        CheckConstraint("per_kg_amount >= 0", name="per_kg_not_negative"),
        CheckConstraint("free_over_amount >= 0", name="free_over_not_negative"),
    )

    code: Mapped[str] = mapped_column(String(50), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[ShippingKind] = mapped_column(enum_column(ShippingKind))
    currency: Mapped[str] = mapped_column(String(3))
    base_amount: Mapped[int] = mapped_column(BigInteger)
    per_kg_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    free_over_amount: Mapped[int | None] = mapped_column(BigInteger)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))


class Voucher(TimestampMixin, Base):
    """A discount code; ``used_count`` is claimed atomically and never passes ``usage_limit``.

    ``currency`` names what its amounts (a fixed value, a minimum subtotal) are counted in; a
    voucher with one applies to orders in that currency only.
    """

    __tablename__ = "vouchers"
    __table_args__ = (
        CheckConstraint("value > 0", name="value_positive"),
        CheckConstraint("kind <> 'percentage' OR value <= 100", name="percentage_at_most_100"),
        CheckConstraint("kind <> 'fixed' OR currency IS NOT NULL", name="fixed_has_currency"),
        CheckConstraint(
            "min_subtotal_amount = 0 OR currency IS NOT NULL", name="minimum_has_currency"
        ),
        CheckConstraint("used_count >= 0", name="used_not_negative"),
        CheckConstraint(
            "usage_limit IS NULL OR used_count <= usage_limit", name="used_within_limit"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    code: Mapped[str] = mapped_column(String(50), unique=True)
    kind: Mapped[VoucherKind] = mapped_column(enum_column(VoucherKind))
    value: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    min_subtotal_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    usage_limit: Mapped[int | None] = mapped_column(Integer)
    used_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    starts_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))


class _OrderMoney(Protocol):
    @property
    def currency(self) -> str: ...
    @property
    def subtotal_amount(self) -> int: ...
    @property
    def shipping_amount(self) -> int: ...
    @property
    def discount_amount(self) -> int: ...
    @property
    def total_amount(self) -> int: ...


class OrderAmounts:
    """An order's amounts as ``Money``: for the stored order and the one being placed alike."""

    @property
    def subtotal(self: _OrderMoney) -> Money:
        """The sum of the lines."""
        return Money(amount=self.subtotal_amount, currency=self.currency)

    @property
    def shipping(self: _OrderMoney) -> Money:
        """The price of shipping."""
        return Money(amount=self.shipping_amount, currency=self.currency)

    @property
    def discount(self: _OrderMoney) -> Money:
        """What the voucher took off the subtotal."""
        return Money(amount=self.discount_amount, currency=self.currency)

    @property
    def total(self: _OrderMoney) -> Money:
        """What the buyer pays: subtotal + shipping - discount."""
        return Money(amount=self.total_amount, currency=self.currency)


class _LineMoney(Protocol):
    @property
    def currency(self) -> str: ...
    @property
    def quantity(self) -> int: ...
    @property
    def unit_price_amount(self) -> int: ...


class LineAmounts:
    """A line's amounts as ``Money``: for the stored line and the one being placed alike."""

    @property
    def unit_price(self: _LineMoney) -> Money:
        """The price of one unit at checkout."""
        return Money(amount=self.unit_price_amount, currency=self.currency)

    @property
    def total(self: _LineMoney) -> Money:
        """Unit price times quantity."""
        return Money(amount=self.unit_price_amount * self.quantity, currency=self.currency)


class Order(OrderAmounts, TimestampMixin, Base):
    """A buyer's order: frozen lines and totals, and where it stands."""

    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("subtotal_amount >= 0", name="subtotal_not_negative"),
        CheckConstraint("shipping_amount >= 0", name="shipping_not_negative"),
        CheckConstraint(
            "discount_amount >= 0 AND discount_amount <= subtotal_amount", name="discount_in_range"
        ),
        CheckConstraint(
            "total_amount = subtotal_amount + shipping_amount - discount_amount",
            name="total_adds_up",
        ),
        Index("ix_orders_user_created", "user_id", "created_at", "id"),
        Index("ix_orders_created", "created_at", "id"),
        # Revenue per minute on the dashboard reads the orders paid in the last minute.
        Index("ix_orders_paid", "paid_at", postgresql_where="paid_at IS NOT NULL"),
        Index(
            "ix_orders_payment_due",
            "payment_due_at",
            postgresql_where="status = 'pending_payment'",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    number: Mapped[int] = mapped_column(BigInteger, Identity(start=1000), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    status: Mapped[OrderStatus] = mapped_column(
        enum_column(OrderStatus), default=OrderStatus.PENDING_PAYMENT, index=True
    )
    currency: Mapped[str] = mapped_column(String(3))
    subtotal_amount: Mapped[int] = mapped_column(BigInteger)
    shipping_amount: Mapped[int] = mapped_column(BigInteger)
    discount_amount: Mapped[int] = mapped_column(BigInteger)
    total_amount: Mapped[int] = mapped_column(BigInteger)
    shipping_method: Mapped[str | None] = mapped_column(String(50))
    voucher_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("vouchers.id", ondelete="SET NULL")
    )
    voucher_code: Mapped[str | None] = mapped_column(String(50))
    pickup_point_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("warehouses.id", ondelete="RESTRICT")
    )
    # SQL NULL, not JSON ``null``, for an order bought without an address (a flash-sale ticket).
    shipping_address: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    payment_due_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    paid_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    shipped_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_reason: Mapped[str | None] = mapped_column(String(50))
    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", order_by="OrderLine.position", cascade="all, delete-orphan"
    )


class OrderLine(LineAmounts, Base):
    """A variant bought, with its name and unit price as they were at checkout."""

    __tablename__ = "order_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price_amount >= 0", name="unit_price_not_negative"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    variant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("product_variants.id", ondelete="SET NULL"), index=True
    )
    sku: Mapped[str] = mapped_column(String(64))
    product_name: Mapped[str] = mapped_column(String(300))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    order: Mapped[Order] = relationship(back_populates="lines")
