"""The tables of flash sales: the sales staff schedule and the tickets buyers won.

A sale's units are held in inventory from its creation (``units_held`` of them, in its
warehouse); each ticket turned into an order hands its units over to that order
(``units_ordered``). The CHECK constraints are the database's own guard: whatever Redis said, a
sale can never hand out more units than it has.

PostgreSQL is the record of the sale: each ticket and what became of it, the units each buyer
holds (``flash_sale_buyers``, where the per-buyer limit is enforced again), and the units taken
back from cancelled orders. Redis's state is rebuilt from it exactly when Redis loses it; the
sale's ``state_epoch`` then moves on, so a ticket sold by the lost state and still in a worker's
hands is refused rather than counted twice.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from agora.core.db import Base, TimestampMixin, enum_column


class FlashSale(TimestampMixin, Base):
    """A variant sold at a special price, in a limited quantity, during a window."""

    __tablename__ = "flash_sales"
    __table_args__ = (
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        CheckConstraint("per_user_limit > 0", name="per_user_limit_positive"),
        CheckConstraint("price_amount >= 0", name="price_not_negative"),
        CheckConstraint("ends_at > starts_at", name="window_not_empty"),
        CheckConstraint(
            "units_ordered >= 0 AND units_ordered <= quantity", name="units_ordered_within_quantity"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    variant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("product_variants.id", ondelete="RESTRICT"), index=True
    )
    warehouse_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("warehouses.id", ondelete="RESTRICT")
    )
    price_amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    quantity: Mapped[int] = mapped_column(Integer)
    per_user_limit: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    units_ordered: Mapped[int] = mapped_column(Integer, default=0)
    settled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    units_returned: Mapped[int | None] = mapped_column(Integer)
    state_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))

    @property
    def units_held(self) -> int:
        """Units still set aside in inventory for buyers of this sale."""
        return self.quantity - self.units_ordered


class TicketStatus(enum.StrEnum):
    """Where a won purchase stands: waiting for the worker, turned into an order, or refused."""

    QUEUED = "queued"
    ORDERED = "ordered"
    REJECTED = "rejected"


class FlashSaleTicket(TimestampMixin, Base):
    """The right to buy units of a sale, won in Redis and written here by the worker.

    The primary key is the ticket id Redis handed out, and ``order_id`` is unique: a ticket
    becomes at most one order, and an order belongs to at most one ticket, however many times
    the worker's job runs. When its order is cancelled, ``units_returned_at`` records that the
    sale took the units back, and ``is_returned_to_sale`` whether they could be sold again in the
    sale (or had gone to regular buyers meanwhile). ``buyer_id`` has no foreign key: a ticket of
    an account deleted meanwhile is still recorded, as rejected.
    """

    __tablename__ = "flash_sale_tickets"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        Index("ix_flash_sale_tickets_sale_id_status", "sale_id", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    sale_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("flash_sales.id", ondelete="CASCADE"))
    buyer_id: Mapped[uuid.UUID] = mapped_column(index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[TicketStatus] = mapped_column(enum_column(TicketStatus))
    reason: Mapped[str | None] = mapped_column(String(64))
    order_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("orders.id", ondelete="RESTRICT"), unique=True
    )
    units_returned_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    is_returned_to_sale: Mapped[bool | None] = mapped_column()


class FlashSaleBuyer(Base):
    """The units a buyer holds in a sale (ordered, not taken back): the per-buyer limit's record.

    Raised only while it stays within the sale's ``per_user_limit`` (a guarded upsert), lowered
    when the sale takes a cancelled order's units back.
    """

    __tablename__ = "flash_sale_buyers"
    __table_args__ = (CheckConstraint("units >= 0", name="units_not_negative"),)

    sale_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("flash_sales.id", ondelete="CASCADE"), primary_key=True
    )
    buyer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    units: Mapped[int] = mapped_column(Integer)
