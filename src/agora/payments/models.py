"""The tables of payments: payments, their refunds, and the inbox of provider callbacks."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from agora.core.db import Base, TimestampMixin, enum_column


class PaymentStatus(enum.StrEnum):
    """``pending`` until the provider says; ``failed`` may still succeed on a later attempt;
    ``cancelled`` was closed at the provider (its order was cancelled, or another payment
    replaced it), and still captures if money arrives anyway."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RefundStatus(enum.StrEnum):
    """``pending`` until the provider's callback (or answer) settles it."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class PaymentFlag(enum.StrEnum):
    """Why a payment needs a human: the money and the order do not agree."""

    AMOUNT_MISMATCH = "amount_mismatch"
    ORDER_NOT_PAYABLE = "order_not_payable"


class InboxOutcome(enum.StrEnum):
    """What applying a callback did."""

    APPLIED = "applied"
    ALREADY_APPLIED = "already_applied"
    AMOUNT_MISMATCH = "amount_mismatch"
    IGNORED = "ignored"


class Payment(TimestampMixin, Base):
    """One attempt to pay an order through one provider, for the order's frozen total; an order
    has at most one open (``pending``) payment at a time.

    ``refund_reserved_amount`` counts refunds asked for (pending or settled) and
    ``refunded_amount`` those settled; CHECKs keep both within the captured amount.
    """

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        CheckConstraint(
            "refunded_amount >= 0 AND refunded_amount <= refund_reserved_amount "
            "AND refund_reserved_amount <= amount",
            name="refunds_within_amount",
        ),
        UniqueConstraint("provider", "provider_reference"),
        Index(
            "ix_payments_pending_created_at", "created_at", postgresql_where="status = 'pending'"
        ),
        Index(
            "uq_payments_open_order",
            "order_id",
            unique=True,
            postgresql_where="status = 'pending'",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="RESTRICT"), index=True
    )
    provider: Mapped[str] = mapped_column(String(32))
    status: Mapped[PaymentStatus] = mapped_column(
        enum_column(PaymentStatus), default=PaymentStatus.PENDING
    )
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    provider_reference: Mapped[str | None] = mapped_column(String(255))
    client_action: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    refund_reserved_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    flag: Mapped[PaymentFlag | None] = mapped_column(enum_column(PaymentFlag))
    flag_detail: Mapped[str | None] = mapped_column(String(500))
    paid_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Refund(TimestampMixin, Base):
    """Money given back from a captured payment, in full or in part."""

    __tablename__ = "refunds"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    payment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("payments.id", ondelete="RESTRICT"), index=True
    )
    amount: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[RefundStatus] = mapped_column(
        enum_column(RefundStatus), default=RefundStatus.PENDING
    )
    provider_reference: Mapped[str | None] = mapped_column(String(255))
    requested_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    submitted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    settled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class InboxEvent(Base):
    """A verified callback, stored once per (provider, event id): a redelivery is a no-op."""

    __tablename__ = "payment_inbox"
    __table_args__ = (
        UniqueConstraint("provider", "event_id"),
        # The dashboard counts callbacks by provider and outcome over a time range.
        Index("ix_payment_inbox_received", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(100))
    payment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("payments.id", ondelete="SET NULL"), index=True
    )
    outcome: Mapped[InboxOutcome] = mapped_column(enum_column(InboxOutcome))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    received_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
