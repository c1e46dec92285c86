"""Price watch's tables: watched sites, the product pages watched on them, their price history."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from agora.core.db import Base, TimestampMixin


class Site(TimestampMixin, Base):
    """A competitor's or supplier's site: how politely to crawl it and how to read its pages."""

    __tablename__ = "pricewatch_sites"
    __table_args__ = (
        CheckConstraint("delay_ms >= 0", name="delay_not_negative"),
        CheckConstraint("max_concurrency >= 1", name="max_concurrency_positive"),
        CheckConstraint(
            "recrawl_min_s >= 1 AND recrawl_max_s >= recrawl_min_s", name="recrawl_bounds"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    host: Mapped[str] = mapped_column(String(255), unique=True)
    base_url: Mapped[str] = mapped_column(String(2048))
    delay_ms: Mapped[int] = mapped_column(Integer)
    max_concurrency: Mapped[int] = mapped_column(Integer)
    recrawl_min_s: Mapped[int] = mapped_column(Integer)
    recrawl_max_s: Mapped[int] = mapped_column(Integer)
    rules: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class Target(TimestampMixin, Base):
    """A watched product page, optionally matched to one of our variants, with its last price."""

    __tablename__ = "pricewatch_targets"
    __table_args__ = (CheckConstraint("price_amount >= 0", name="price_not_negative"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    site_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("pricewatch_sites.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2048), unique=True)
    variant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("product_variants.id", ondelete="SET NULL"), index=True
    )
    price_amount: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    in_stock: Mapped[bool | None] = mapped_column(Boolean)
    changed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class PriceChange(Base):
    """One observed change of a page's price or availability (the first reading included)."""

    __tablename__ = "pricewatch_price_changes"
    __table_args__ = (Index("ix_pricewatch_price_changes_target_id_id", "target_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    target_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("pricewatch_targets.id", ondelete="CASCADE")
    )
    price_amount: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    in_stock: Mapped[bool | None] = mapped_column(Boolean)
    observed_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
