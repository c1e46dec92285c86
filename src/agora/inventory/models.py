"""The tables of inventory: warehouses, stock levels, reservations and the movement ledger.

A stock level counts, for one variant in one warehouse, the units on hand (``quantity``), those
held for unpaid orders (``reserved``) and those sold but not yet shipped (``allocated``).
``available = quantity - reserved - allocated`` is what can still be sold; CHECK constraints keep
every count non-negative and ``reserved + allocated <= quantity``, the last guard against selling
a unit twice whatever the code above does.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from agora.core.db import Base, TimestampMixin, enum_column
from agora.inventory.geo import Point


class Warehouse(TimestampMixin, Base):
    """A place stock is kept; exactly one is the default, used when none is named.

    A warehouse that is a pickup point has a location, an address and opening hours; its
    ``location`` is the built-in ``point(longitude, latitude)``, GiST-indexed for nearest-first
    and bounding-box searches (see ``geo.py`` for why those two together stay exact).
    """

    __tablename__ = "warehouses"
    __table_args__ = (
        Index("uq_warehouses_is_default", "is_default", unique=True, postgresql_where="is_default"),
        Index(
            "ix_warehouses_pickup_location",
            "location",
            postgresql_using="gist",
            postgresql_where="is_pickup_point",
        ),
        CheckConstraint(
            "NOT is_pickup_point OR (location IS NOT NULL AND time_zone IS NOT NULL)",
            name="pickup_point_is_located",
        ),
        CheckConstraint("latitude BETWEEN -90 AND 90", name="latitude_in_range"),
        CheckConstraint("longitude BETWEEN -180 AND 180", name="longitude_in_range"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    code: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    is_pickup_point: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    latitude: Mapped[float | None] = mapped_column(Double)
    longitude: Mapped[float | None] = mapped_column(Double)
    location: Mapped[tuple[float, float] | None] = mapped_column(Point)
    address: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    opening_hours: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    time_zone: Mapped[str | None] = mapped_column(String(64))


class StockLevel(TimestampMixin, Base):
    """Units of one variant in one warehouse: on hand, reserved and allocated."""

    __tablename__ = "stock_levels"
    __table_args__ = (
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("allocated >= 0", name="allocated_not_negative"),
        CheckConstraint("reserved + allocated <= quantity", name="committed_within_quantity"),
    )

    variant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("product_variants.id", ondelete="CASCADE"), primary_key=True
    )
    warehouse_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("warehouses.id", ondelete="RESTRICT"), primary_key=True, index=True
    )
    quantity: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    reserved: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    allocated: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))

    @property
    def available(self) -> int:
        """Units that can still be sold."""
        return self.quantity - self.reserved - self.allocated


class ReservationStatus(enum.StrEnum):
    """Where units held for an order stand: held until paid, then allocated, then shipped."""

    HELD = "held"
    ALLOCATED = "allocated"
    SHIPPED = "shipped"
    RELEASED = "released"


class StockReservation(TimestampMixin, Base):
    """Units of a variant in a warehouse held for one reference (an order)."""

    __tablename__ = "stock_reservations"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    reference_id: Mapped[uuid.UUID] = mapped_column(index=True)
    variant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("product_variants.id", ondelete="CASCADE")
    )
    warehouse_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("warehouses.id", ondelete="RESTRICT")
    )
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[ReservationStatus] = mapped_column(
        enum_column(ReservationStatus), default=ReservationStatus.HELD
    )


class MovementKind(enum.StrEnum):
    """Why a stock level changed."""

    ADJUSTMENT = "adjustment"
    RESERVATION = "reservation"
    ALLOCATION = "allocation"
    SHIPMENT = "shipment"
    RELEASE = "release"


class StockMovement(Base):
    """One change of a stock level, kept as an append-only ledger for audits."""

    __tablename__ = "stock_movements"
    __table_args__ = (Index("ix_stock_movements_variant_created", "variant_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    variant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("product_variants.id", ondelete="CASCADE")
    )
    warehouse_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("warehouses.id", ondelete="RESTRICT")
    )
    kind: Mapped[MovementKind] = mapped_column(enum_column(MovementKind))
    quantity: Mapped[int] = mapped_column(Integer)
    reference_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
