"""The tables of carts.

A cart belongs to a user, or to whoever holds its token (an anonymous visitor); only the token's
SHA-256 is stored. A user has at most one active cart (a partial unique index), which is what
lets concurrent "open my cart" calls agree on one.
"""

from __future__ import annotations

import enum
import uuid

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from agora.catalog.models import ProductVariant
from agora.core.db import Base, TimestampMixin, enum_column


class CartStatus(enum.StrEnum):
    """An active cart can change; a merged or checked-out one is kept only for the record."""

    ACTIVE = "active"
    MERGED = "merged"
    CHECKED_OUT = "checked_out"


class Cart(TimestampMixin, Base):
    """A buyer's selection of variants before checkout."""

    __tablename__ = "carts"
    __table_args__ = (
        CheckConstraint("user_id IS NOT NULL OR token_hash IS NOT NULL", name="has_owner"),
        Index(
            "uq_carts_active_user",
            "user_id",
            unique=True,
            postgresql_where="status = 'active' AND user_id IS NOT NULL",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    status: Mapped[CartStatus] = mapped_column(enum_column(CartStatus), default=CartStatus.ACTIVE)
    items: Mapped[list[CartItem]] = relationship(
        back_populates="cart", order_by="CartItem.created_at", cascade="all, delete-orphan"
    )


class CartItem(TimestampMixin, Base):
    """A variant and how many of it are in a cart."""

    __tablename__ = "cart_items"
    __table_args__ = (
        UniqueConstraint("cart_id", "variant_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    cart_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"))
    variant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("product_variants.id", ondelete="CASCADE"), index=True
    )
    quantity: Mapped[int] = mapped_column(Integer)
    cart: Mapped[Cart] = relationship(back_populates="items")
    variant: Mapped[ProductVariant] = relationship()
