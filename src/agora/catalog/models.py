"""The tables of the catalog.

``products.search_vector`` is written by the application (``catalog/search.py``) on every write,
because Chinese text must be segmented by jieba, which PostgreSQL cannot do; ``price_min_amount``
is the cheapest variant's price, kept on write so lists can be sorted by price with an index.
"""

from __future__ import annotations

import enum
import uuid
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column, relationship

from agora.core.db import Base, TimestampMixin, enum_column


class ProductStatus(enum.StrEnum):
    """Buyers see published products only."""

    DRAFT = "draft"
    PUBLISHED = "published"


class Category(TimestampMixin, Base):
    """A node of the category tree."""

    __tablename__ = "categories"
    __table_args__ = (
        CheckConstraint("parent_id IS NULL OR parent_id <> id", name="not_own_parent"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("categories.id", ondelete="RESTRICT"), index=True
    )
    description: Mapped[str] = mapped_column(Text, default="", server_default="")


class Product(TimestampMixin, Base):
    """Something sold, in one or more variants."""

    __tablename__ = "products"
    __table_args__ = (
        Index("ix_products_search_vector", "search_vector", postgresql_using="gin"),
        Index(
            "ix_products_published_newest",
            "created_at",
            "id",
            postgresql_where=text("status = 'published'"),
        ),
        Index(
            "ix_products_published_price",
            "price_min_amount",
            "id",
            postgresql_where=text("status = 'published'"),
        ),
        Index(
            "ix_products_published_name",
            "name",
            "id",
            postgresql_where=text("status = 'published'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(300))
    slug: Mapped[str] = mapped_column(String(300), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[ProductStatus] = mapped_column(
        enum_column(ProductStatus), default=ProductStatus.DRAFT, index=True
    )
    category_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("categories.id", ondelete="SET NULL"), index=True
    )
    images: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default="[]")
    search_vector: Mapped[str] = mapped_column(TSVECTOR, default="", server_default="")
    price_min_amount: Mapped[int | None] = mapped_column(BigInteger)
    category: Mapped[Category | None] = relationship()
    variants: Mapped[list[ProductVariant]] = relationship(
        back_populates="product", order_by="ProductVariant.sku"
    )


class ProductVariant(TimestampMixin, Base):
    """One buyable form of a product (size, colour ...), with its own SKU and price."""

    __tablename__ = "product_variants"
    __table_args__ = (
        CheckConstraint("price_amount >= 0", name="price_not_negative"),
        CheckConstraint("weight_grams >= 0", name="weight_not_negative"),
        Index(
            "ix_product_variants_attributes",
            "attributes",
            postgresql_using="gin",
            postgresql_ops={"attributes": "jsonb_path_ops"},
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    product_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    price_amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    weight_grams: Mapped[int] = mapped_column(Integer, default=0)
    product: Mapped[Product] = relationship(back_populates="variants")
