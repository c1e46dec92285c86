"""Every query on the payments tables. State changes are single atomic ``UPDATE … WHERE
<expected state> … RETURNING`` statements, so a transition happens at most once."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from asyncpg import Record
from sqlalchemy import (
    Boolean,
    ColumnElement,
    bindparam,
    exists,
    func,
    literal,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.driver import DriverStatement
from agora.payments.models import (
    InboxEvent,
    InboxOutcome,
    Payment,
    PaymentFlag,
    PaymentStatus,
    Refund,
    RefundStatus,
)
from agora.payments.providers.base import CallbackEvent


async def add_open_payment(session: AsyncSession, **values: Any) -> Payment | None:
    """Insert a pending payment, or None when its order already has an open one (the partial
    unique index decides, so two concurrent requests cannot both open one)."""
    inserted = await session.scalar(
        insert(Payment)
        .values(id=uuid.uuid4(), status=PaymentStatus.PENDING, **values)
        .on_conflict_do_nothing(
            index_elements=[Payment.order_id], index_where=text("status = 'pending'")
        )
        .returning(Payment.id)
    )
    return None if inserted is None else await session.get(Payment, inserted)


async def open_payment_of_order(session: AsyncSession, order_id: uuid.UUID) -> Payment | None:
    """The order's open (pending) payment, if it has one."""
    payment: Payment | None = await session.scalar(
        select(Payment)
        .where(Payment.order_id == order_id, Payment.status == PaymentStatus.PENDING)
        .execution_options(populate_existing=True)
    )
    return payment


async def get_payment(session: AsyncSession, payment_id: uuid.UUID) -> Payment | None:
    """A payment by id."""
    return await session.get(Payment, payment_id)


def _locking_store(names_payment: ColumnElement[bool]) -> DriverStatement:
    """``lock_and_store``'s statement for payments named by ``names_payment``."""
    locked = (
        select(Payment)
        .where(names_payment, Payment.provider == bindparam("provider"))
        .with_for_update()
        .cte("locked")
    )
    columns = InboxEvent.__table__.c
    entry = select(
        bindparam("provider", type_=columns.provider.type),
        bindparam("event_id", type_=columns.event_id.type),
        bindparam("event_type", type_=columns.event_type.type),
        select(locked.c.id).scalar_subquery(),
        literal(InboxOutcome.APPLIED, columns.outcome.type),
        bindparam("payload", type_=columns.payload.type),
    ).where(or_(exists(locked.select()), bindparam("store_unknown", type_=Boolean)))
    stored = (
        insert(InboxEvent)
        .from_select(
            ["provider", "event_id", "event_type", "payment_id", "outcome", "payload"], entry
        )
        .on_conflict_do_nothing(index_elements=[InboxEvent.provider, InboxEvent.event_id])
        .returning(InboxEvent.id)
        .cte("stored")
    )
    return DriverStatement(
        select(*locked.c, exists(stored.select()).label("is_new"))
        .select_from(select(literal(1)).subquery())
        .outerjoin(locked, true())
    )


_LOCK_BY_ID = _locking_store(Payment.id == bindparam("payment_id", type_=Payment.id.type))
_LOCK_BY_REFERENCE = _locking_store(Payment.provider_reference == bindparam("reference"))
_PAYMENT_COLUMNS = [column.key for column in Payment.__table__.c]


async def lock_and_store(
    session: AsyncSession, provider: str, event: CallbackEvent, store_unknown: bool
) -> tuple[Payment | None, bool]:
    """The provider's payment the event names (by our id or by the provider's reference),
    row-locked, and the event stored in the inbox as ``applied`` (the caller records another
    outcome), in one statement; the payment (not in the session: a snapshot taken under its
    lock), and whether the event was stored now: False when this (provider, event id) was
    stored already, or when the event names no payment we know and ``store_unknown`` is False.

    Locking serialises every callback about one payment, so their effects never interleave. The
    inbox row reads the locked payment's id, so it is written once the lock is held: a
    redelivery racing its first delivery waits for it, then finds its row and stores nothing.
    """
    values = {
        "provider": provider,
        "event_id": event.event_id,
        "event_type": event.event_type[:100],
        "payload": dict(event.payload),
        "store_unknown": store_unknown,
    }
    if event.payment_id is None and event.provider_reference:
        row = await _LOCK_BY_REFERENCE.fetchrow(
            session, reference=event.provider_reference, **values
        )
    else:  # by our id, or (neither given) a statement that finds nothing
        row = await _LOCK_BY_ID.fetchrow(session, payment_id=event.payment_id, **values)
    assert row is not None, "the statement always returns its one row"
    return _payment_of(row), bool(row["is_new"])


def _payment_of(row: Record) -> Payment | None:
    """The payment in a row read by the driver, or None when the row names none."""
    if row["id"] is None:
        return None
    payment = Payment(**{key: row[key] for key in _PAYMENT_COLUMNS})
    payment.status = PaymentStatus(row["status"])
    payment.flag = None if row["flag"] is None else PaymentFlag(row["flag"])
    return payment


_KNOWN = DriverStatement(
    select(InboxEvent.id).where(
        InboxEvent.provider == bindparam("provider"), InboxEvent.event_id == bindparam("event_id")
    )
)


async def is_known_event(session: AsyncSession, provider: str, event_id: str) -> bool:
    """Whether this (provider, event id) is in the inbox already: one lookup on its unique index,
    taking no lock, and needing no transaction: a duplicate is answered with this one round
    trip (no BEGIN, no COMMIT)."""
    return await _KNOWN.fetchrow_unbegun(session, provider=provider, event_id=event_id) is not None


async def set_inbox_outcome(
    session: AsyncSession, provider: str, event_id: str, outcome: InboxOutcome
) -> None:
    """Record what applying a stored callback did."""
    await session.execute(
        update(InboxEvent)
        .where(InboxEvent.provider == provider, InboxEvent.event_id == event_id)
        .values(outcome=outcome)
    )


_CAPTURABLE = (PaymentStatus.PENDING, PaymentStatus.FAILED, PaymentStatus.CANCELLED)
_SUCCEEDED = DriverStatement(
    update(Payment)
    .where(
        Payment.id == bindparam("payment_id"),
        # not ``IN``: a driver statement's values are plain bindparams, not an expanding list
        or_(*(Payment.status == status for status in _CAPTURABLE)),
    )
    .values(
        status=PaymentStatus.SUCCEEDED,
        paid_at=func.now(),
        provider_reference=func.coalesce(Payment.provider_reference, bindparam("reference")),
    )
    .returning(Payment.id)
)


async def mark_succeeded(
    session: AsyncSession, payment_id: uuid.UUID, provider_reference: str | None
) -> bool:
    """pending|failed|cancelled → succeeded (money that arrives is recorded whatever we thought
    of the payment); False if it had already succeeded."""
    changed = await _SUCCEEDED.fetchrow(
        session, payment_id=payment_id, reference=provider_reference
    )
    return changed is not None


async def end_pending(session: AsyncSession, payment_id: uuid.UUID, status: PaymentStatus) -> bool:
    """pending → failed (the provider said so) or cancelled (we closed it at the provider);
    False if it is no longer pending: a succeeded payment never goes back."""
    result = await session.execute(
        update(Payment)
        .where(Payment.id == payment_id, Payment.status == PaymentStatus.PENDING)
        .values(status=status)
        .returning(Payment.id)
    )
    return result.scalar() is not None


async def flag_payment(
    session: AsyncSession, payment_id: uuid.UUID, flag: PaymentFlag, detail: str
) -> None:
    """Mark a payment for a human to look at."""
    await session.execute(
        update(Payment).where(Payment.id == payment_id).values(flag=flag, flag_detail=detail[:500])
    )


async def reserve_refund(session: AsyncSession, payment_id: uuid.UUID, amount: int) -> bool:
    """Count ``amount`` against what may still be refunded; False if it would exceed the capture."""
    result = await session.execute(
        update(Payment)
        .where(
            Payment.id == payment_id,
            Payment.status == PaymentStatus.SUCCEEDED,
            Payment.refund_reserved_amount + amount <= Payment.amount,
        )
        .values(refund_reserved_amount=Payment.refund_reserved_amount + amount)
        .returning(Payment.id)
    )
    return result.scalar() is not None


async def add_refund(session: AsyncSession, refund: Refund) -> Refund:
    """Insert a refund and flush it."""
    session.add(refund)
    await session.flush()
    return refund


async def lock_refund(session: AsyncSession, refund_id: uuid.UUID) -> Refund | None:
    """A refund, row-locked (one submission at a time)."""
    refund: Refund | None = await session.scalar(
        select(Refund)
        .where(Refund.id == refund_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return refund


async def mark_refund_submitted(
    session: AsyncSession, refund_id: uuid.UUID, provider_reference: str | None
) -> None:
    """The provider accepted the refund."""
    await session.execute(
        update(Refund)
        .where(Refund.id == refund_id)
        .values(submitted_at=func.now(), provider_reference=provider_reference)
    )


async def settle_refund(
    session: AsyncSession, refund_id: uuid.UUID, payment_id: uuid.UUID, status: RefundStatus
) -> int | None:
    """pending → succeeded|failed, moving the payment's totals; the refund's amount, or None if it
    was not pending."""
    amount: int | None = await session.scalar(
        update(Refund)
        .where(
            Refund.id == refund_id,
            Refund.payment_id == payment_id,
            Refund.status == RefundStatus.PENDING,
        )
        .values(status=status, settled_at=func.now())
        .returning(Refund.amount)
    )
    if amount is None:
        return None
    values = (
        {"refunded_amount": Payment.refunded_amount + amount}
        if status is RefundStatus.SUCCEEDED
        else {"refund_reserved_amount": Payment.refund_reserved_amount - amount}
    )
    await session.execute(update(Payment).where(Payment.id == payment_id).values(**values))
    return amount


async def pending_refunds(session: AsyncSession, payment_id: uuid.UUID) -> Sequence[Refund]:
    """A payment's pending refunds, oldest first."""
    return (
        await session.scalars(
            select(Refund)
            .where(Refund.payment_id == payment_id, Refund.status == RefundStatus.PENDING)
            .order_by(Refund.created_at, Refund.id)
        )
    ).all()


async def refund_state(
    session: AsyncSession, payment_id: uuid.UUID
) -> tuple[int, PaymentFlag | None]:
    """What has been refunded of a payment so far, and its flag, as stored now."""
    row = (
        await session.execute(
            select(Payment.refunded_amount, Payment.flag).where(Payment.id == payment_id)
        )
    ).one()
    return int(row.refunded_amount), row.flag


async def captured_payment_of_order(session: AsyncSession, order_id: uuid.UUID) -> Payment | None:
    """The payment that paid the order: the first unflagged capture (a flagged one only when
    there is no other)."""
    payment: Payment | None = await session.scalar(
        select(Payment)
        .where(Payment.order_id == order_id, Payment.status == PaymentStatus.SUCCEEDED)
        .order_by(Payment.flag.is_not(None), Payment.paid_at, Payment.id)
        .limit(1)
    )
    return payment


async def other_captured_payment(
    session: AsyncSession, order_id: uuid.UUID, payment_id: uuid.UUID
) -> uuid.UUID | None:
    """Another payment of the order that was captured (committed), if any."""
    other: uuid.UUID | None = await session.scalar(
        select(Payment.id)
        .where(
            Payment.order_id == order_id,
            Payment.status == PaymentStatus.SUCCEEDED,
            Payment.id != payment_id,
        )
        .order_by(Payment.paid_at)
        .limit(1)
    )
    return other


async def overdue_payments(
    session: AsyncSession, older_than: dt.datetime, newer_than: dt.datetime, limit: int
) -> Sequence[Payment]:
    """Payments still pending after their callback should have come, oldest first."""
    return (
        await session.scalars(
            select(Payment)
            .where(
                Payment.status == PaymentStatus.PENDING,
                Payment.created_at < older_than,
                Payment.created_at > newer_than,
            )
            .order_by(Payment.created_at)
            .limit(limit)
        )
    ).all()


async def unsubmitted_refund_ids(
    session: AsyncSession, older_than: dt.datetime, limit: int
) -> Sequence[uuid.UUID]:
    """Pending refunds whose submission task was lost (never accepted by the provider)."""
    return (
        await session.scalars(
            select(Refund.id)
            .where(
                Refund.status == RefundStatus.PENDING,
                Refund.submitted_at.is_(None),
                Refund.created_at < older_than,
            )
            .order_by(Refund.created_at)
            .limit(limit)
        )
    ).all()


async def overdue_submitted_refunds(
    session: AsyncSession, older_than: dt.datetime, limit: int
) -> Sequence[tuple[Refund, Payment]]:
    """Refunds the provider accepted but whose callback has not settled them, with their
    payments, oldest submission first."""
    rows = await session.execute(
        select(Refund, Payment)
        .join(Payment, Payment.id == Refund.payment_id)
        .where(Refund.status == RefundStatus.PENDING, Refund.submitted_at < older_than)
        .order_by(Refund.submitted_at)
        .limit(limit)
    )
    return [(refund, payment) for refund, payment in rows]
