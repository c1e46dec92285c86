"""Every query on the order, shipping-method and voucher tables."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ARRAY, Update, bindparam, func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from agora.accounts.models import User
from agora.catalog.models import ProductVariant
from agora.core.driver import DriverStatement
from agora.core.outbox import event_insert_template, event_values
from agora.orders.drafts import NewOrder
from agora.orders.models import (
    Order,
    OrderLine,
    OrderStatus,
    ShippingKind,
    ShippingMethod,
    Voucher,
)


@dataclass(frozen=True)
class OrderFilter:
    """What an order list is narrowed to; ``after`` is the (created_at, id) of the last one seen."""

    user_id: uuid.UUID | None = None
    status: OrderStatus | None = None
    number: int | None = None
    email: str | None = None
    after: tuple[dt.datetime, uuid.UUID] | None = None


async def variants_with_products(
    session: AsyncSession, variant_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, ProductVariant]:
    """Variants by id, with their products."""
    result = await session.scalars(
        select(ProductVariant)
        .where(ProductVariant.id.in_(list(variant_ids)))
        .options(joinedload(ProductVariant.product))
    )
    return {variant.id: variant for variant in result}


_ASSIGNED = frozenset({"number", "created_at", "updated_at"})  # by the database, on insert
_WRITTEN = [column for column in Order.__table__.c if column.key not in _ASSIGNED]
_LINE_COLUMNS = list(OrderLine.__table__.c)
_created = (
    insert(Order)
    .values(
        {column.key: bindparam(f"order_{column.key}", type_=column.type) for column in _WRITTEN}
    )
    .returning(Order.number, Order.created_at, Order.updated_at)
    .cte("created_order")
)
# One array per column, unnested into rows: one statement whatever the number of lines.
_lines = insert(OrderLine).from_select(
    [column.key for column in _LINE_COLUMNS],
    select(
        *(
            func.unnest(bindparam(f"line_{column.key}", type_=ARRAY(column.type)))
            for column in _LINE_COLUMNS
        )
    ),
)
_announced = event_insert_template(func.jsonb_build_object("number", _created.c.number))
# Built once and sent straight to the driver (core/driver.py): built per order, the statement
# cost more CPU than the round trip.
_INSERT_ORDER = DriverStatement(
    select(_created).add_cte(_lines.cte("created_lines"), _announced.cte("announced"))
)


async def insert_order(
    session: AsyncSession, order: NewOrder, event_topic: str, event_payload: dict[str, Any]
) -> None:
    """Write a new order, its lines and its outbox event (``event_payload`` plus the number the
    database assigned), in one statement; the number and timestamps the database assigned are
    set on ``order``."""
    values = {f"order_{column.key}": getattr(order, column.key) for column in _WRITTEN}
    for column in _LINE_COLUMNS:
        values[f"line_{column.key}"] = [getattr(line, column.key) for line in order.lines]
    values.update(event_values(session, event_topic, event_payload, user_id=order.user_id))
    row = await _INSERT_ORDER.fetchrow(session, **values)
    assert row is not None, "an INSERT … RETURNING returns its row"
    order.number, order.created_at, order.updated_at = row


async def get_order(session: AsyncSession, order_id: uuid.UUID) -> Order | None:
    """An order with its lines, fresh from the database."""
    return await session.scalar(
        select(Order)
        .where(Order.id == order_id)
        .options(selectinload(Order.lines))
        .execution_options(populate_existing=True)
    )


async def list_orders(session: AsyncSession, where: OrderFilter, limit: int) -> Sequence[Order]:
    """Orders newest first, with their lines (two queries whatever the page size)."""
    statement = select(Order).options(selectinload(Order.lines))
    if where.user_id is not None:
        statement = statement.where(Order.user_id == where.user_id)
    if where.status is not None:
        statement = statement.where(Order.status == where.status)
    if where.number is not None:
        statement = statement.where(Order.number == where.number)
    if where.email is not None:
        statement = statement.join(User, User.id == Order.user_id).where(
            func.lower(User.email) == where.email.lower()
        )
    if where.after is not None:
        statement = statement.where(tuple_(Order.created_at, Order.id) < tuple_(*where.after))
    result = await session.scalars(
        statement.order_by(Order.created_at.desc(), Order.id.desc()).limit(limit)
    )
    return result.all()


async def update_status(
    session: AsyncSession,
    order_id: uuid.UUID,
    allowed_from: Collection[OrderStatus],
    to: OrderStatus,
    *,
    only_if_due: bool = False,
    needs_address: bool = False,
    **values: Any,
) -> bool:
    """Move an order to ``to`` if it is in one of ``allowed_from`` (and, when ``only_if_due``,
    past its payment deadline; when ``needs_address``, with a shipping address), in one
    statement; whether it moved."""
    statement = _move(order_id, allowed_from, to, only_if_due, needs_address, values)
    moved = await session.scalar(statement.returning(Order.id))
    return moved is not None


def _paid() -> DriverStatement:
    """``mark_paid``'s statement: the move, and its event built from the moved row."""
    moved = (
        update(Order)
        .where(Order.id == bindparam("order_id"), Order.status == OrderStatus.PENDING_PAYMENT)
        .values(status=OrderStatus.PAID, paid_at=bindparam("paid_at"), updated_at=func.now())
        .returning(
            Order.id, Order.number, Order.user_id, Order.status, Order.total_amount, Order.currency
        )
        .cte("moved")
    )
    total = func.jsonb_build_object("amount", moved.c.total_amount, "currency", moved.c.currency)
    said = func.jsonb_build_object(
        "number", moved.c.number, "order_id", moved.c.id, "status", moved.c.status, "total", total
    )
    announced = event_insert_template(said, owner=moved.c.user_id)
    return DriverStatement(select(moved.c.id).add_cte(announced.cte("announced")))


_PAID = _paid()


async def mark_paid(
    session: AsyncSession, order_id: uuid.UUID, paid_at: dt.datetime, topic: str
) -> bool:
    """pending_payment → paid, writing the move's outbox event ``topic`` for the order's buyer
    in the same statement (its payload read back from the moved row, so the order is not
    loaded); whether it moved. The payload is the one ``service`` gives every order event: the
    order's number, id, status and total."""
    event = event_values(session, topic, {}, user_id=None)
    moved = await _PAID.fetchrow(session, order_id=order_id, paid_at=paid_at, **event)
    return moved is not None


def _move(
    order_id: uuid.UUID,
    allowed_from: Collection[OrderStatus],
    to: OrderStatus,
    only_if_due: bool,
    needs_address: bool,
    values: dict[str, Any],
) -> Update:
    statement = update(Order).where(Order.id == order_id, Order.status.in_(list(allowed_from)))
    if only_if_due:
        statement = statement.where(Order.payment_due_at <= func.now())
    if needs_address:
        statement = statement.where(Order.shipping_address.is_not(None))
    return statement.values(status=to, updated_at=func.now(), **values).execution_options(
        synchronize_session=False
    )


async def set_shipping_address(
    session: AsyncSession,
    order_id: uuid.UUID,
    address: dict[str, Any],
    allowed_in: Collection[OrderStatus],
) -> bool:
    """Set an order's shipping address if it is in one of ``allowed_in``; whether it was set."""
    changed = await session.scalar(
        update(Order)
        .where(Order.id == order_id, Order.status.in_(list(allowed_in)))
        .values(shipping_address=address, updated_at=func.now())
        .returning(Order.id)
        .execution_options(synchronize_session=False)
    )
    return changed is not None


async def overdue_order_ids(session: AsyncSession, limit: int) -> Sequence[uuid.UUID]:
    """Unpaid orders past their payment deadline, oldest deadline first."""
    result = await session.scalars(
        select(Order.id)
        .where(Order.status == OrderStatus.PENDING_PAYMENT, Order.payment_due_at <= func.now())
        .order_by(Order.payment_due_at)
        .limit(limit)
    )
    return result.all()


async def active_shipping_methods(session: AsyncSession) -> Sequence[ShippingMethod]:
    """Active shipping methods, by code."""
    result = await session.scalars(
        select(ShippingMethod).where(ShippingMethod.is_active).order_by(ShippingMethod.code)
    )
    return result.all()


@dataclass(frozen=True)
class ShippingRate:
    """What checkout prices of an active shipping method."""

    code: str
    kind: ShippingKind
    base_amount: int
    per_kg_amount: int
    free_over_amount: int | None


# Read at every checkout: built once, sent straight to the driver (core/driver.py).
_RATES = DriverStatement(
    select(
        ShippingMethod.code,
        ShippingMethod.kind,
        ShippingMethod.base_amount,
        ShippingMethod.per_kg_amount,
        ShippingMethod.free_over_amount,
    )
    .where(ShippingMethod.is_active, ShippingMethod.currency == bindparam("currency"))
    .order_by(ShippingMethod.code)
)


async def shipping_rates(session: AsyncSession, currency: str) -> list[ShippingRate]:
    """The active shipping methods of one currency, by code, as plain rows."""
    rows = await _RATES.fetch(session, currency=currency)
    return [ShippingRate(**{**dict(row), "kind": ShippingKind(row["kind"])}) for row in rows]


async def insert_shipping_method(session: AsyncSession, **values: Any) -> ShippingMethod | None:
    """A new shipping method, or None when its code is taken."""
    code = await session.scalar(
        insert(ShippingMethod)
        .values(**values)
        .on_conflict_do_nothing()
        .returning(ShippingMethod.code)
    )
    return None if code is None else await session.get(ShippingMethod, code)


async def insert_voucher(session: AsyncSession, **values: Any) -> Voucher | None:
    """A new voucher, or None when its code is taken."""
    voucher_id = await session.scalar(
        insert(Voucher)
        .values(id=uuid.uuid4(), **values)
        .on_conflict_do_nothing()
        .returning(Voucher.id)
    )
    return None if voucher_id is None else await session.get(Voucher, voucher_id)


async def get_shipping_method(session: AsyncSession, code: str) -> ShippingMethod | None:
    """A shipping method by code."""
    return await session.get(ShippingMethod, code)


async def get_voucher(session: AsyncSession, voucher_id: uuid.UUID) -> Voucher | None:
    """A voucher by id."""
    return await session.get(Voucher, voucher_id)


async def list_vouchers(session: AsyncSession) -> Sequence[Voucher]:
    """Every voucher, newest first."""
    result = await session.scalars(select(Voucher).order_by(Voucher.created_at.desc()))
    return result.all()


async def claim_voucher(session: AsyncSession, code: str) -> Voucher | None:
    """Count one use of a valid voucher, atomically; None if it is unknown, inactive, out of
    its validity window or used up."""
    now = func.now()
    voucher_id = await session.scalar(
        update(Voucher)
        .where(
            Voucher.code == code,
            Voucher.is_active,
            or_(Voucher.usage_limit.is_(None), Voucher.used_count < Voucher.usage_limit),
            or_(Voucher.starts_at.is_(None), Voucher.starts_at <= now),
            or_(Voucher.ends_at.is_(None), Voucher.ends_at > now),
        )
        .values(used_count=Voucher.used_count + 1)
        .returning(Voucher.id)
        .execution_options(synchronize_session=False)
    )
    if voucher_id is None:
        return None
    return await session.scalar(
        select(Voucher).where(Voucher.id == voucher_id).execution_options(populate_existing=True)
    )


async def find_voucher(session: AsyncSession, code: str) -> Voucher | None:
    """A voucher by code, whatever its state."""
    return await session.scalar(select(Voucher).where(Voucher.code == code))


async def release_voucher(session: AsyncSession, voucher_id: uuid.UUID) -> None:
    """Give back one use of a voucher (its order was cancelled)."""
    await session.execute(
        update(Voucher)
        .where(Voucher.id == voucher_id, Voucher.used_count > 0)
        .values(used_count=Voucher.used_count - 1)
        .execution_options(synchronize_session=False)
    )
