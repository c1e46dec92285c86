"""The order state machine, payment hooks and expiry, at the service level."""

from __future__ import annotations

import uuid

import pytest
from redis.asyncio import Redis
from sqlalchemy import update

from agora.core.db import Database
from agora.core.errors import Conflict
from agora.core.money import Money
from agora.orders import service
from agora.orders.models import Order, OrderStatus
from agora.settings import Settings
from tests.factories import create_user, create_variant, stock_of
from tests.orders.support import ADDRESS

CHECKOUT = service.Checkout(shipping_address=ADDRESS)


async def _order(
    database: Database, settings: Settings, redis: Redis, variant: uuid.UUID, **line: object
) -> Order:
    buyer = await create_user(database, settings)
    async with database.unit_of_work() as session:
        return await service.create_order(
            session,
            buyer.id,
            [service.LineRequest(variant, 2, **line)],  # type: ignore[arg-type]
            CHECKOUT,
            payment_timeout=900,
            redis=redis,
        )


async def _make_overdue(database: Database, order_id: uuid.UUID) -> None:
    async with database.unit_of_work() as session:
        await session.execute(
            update(Order).where(Order.id == order_id).values(payment_due_at=Order.created_at)
        )


async def test_explicit_lines_keep_their_unit_price(
    database: Database, settings: Settings, redis: Redis
) -> None:
    variant = await create_variant(database, price=5000, stock=5)

    order = await _order(
        database, settings, redis, variant, unit_price=Money(amount=999, currency="EUR")
    )

    assert order.status == OrderStatus.PENDING_PAYMENT
    assert (order.subtotal_amount, order.total_amount) == (1998, 1998)
    assert (await stock_of(database, variant)).available == 3


async def test_mark_paid_allocates_once_and_is_idempotent(
    database: Database, settings: Settings, redis: Redis
) -> None:
    variant = await create_variant(database, stock=5)
    order = await _order(database, settings, redis, variant)

    async with database.unit_of_work() as session:
        paid = await service.mark_paid(session, order.id)
        again = await service.mark_paid(session, order.id)

    assert paid.status == again.status == OrderStatus.PAID
    assert paid.paid_at is not None
    level = (await stock_of(database, variant)).levels[0]
    assert (level.quantity, level.reserved, level.allocated) == (5, 0, 2)


async def test_a_cancelled_order_cannot_be_paid_and_a_paid_one_cannot_be_cancelled(
    database: Database, settings: Settings, redis: Redis
) -> None:
    variant = await create_variant(database, stock=5)
    cancelled = await _order(database, settings, redis, variant)
    paid = await _order(database, settings, redis, variant)
    async with database.unit_of_work() as session:
        await service.cancel_order(session, cancelled.id, reason="test", redis=redis)
        await service.cancel_order(session, cancelled.id, reason="test", redis=redis)
        await service.mark_paid(session, paid.id)

    for attempt in (
        lambda session: service.mark_paid(session, cancelled.id),
        lambda session: service.cancel_order(session, paid.id, reason="test", redis=redis),
    ):
        with pytest.raises(Conflict) as refused:
            async with database.unit_of_work() as session:
                await attempt(session)
        assert refused.value.instance_code == "order_state_conflict"
    assert (await stock_of(database, variant)).available == 3


async def test_refund_puts_unshipped_units_back_on_sale(
    database: Database, settings: Settings, redis: Redis
) -> None:
    variant = await create_variant(database, stock=5)
    order = await _order(database, settings, redis, variant)
    async with database.unit_of_work() as session:
        await service.mark_paid(session, order.id)
        refunded = await service.mark_refunded(session, order.id, redis)
        await service.mark_refunded(session, order.id, redis)

    assert refunded.status == OrderStatus.REFUNDED
    level = (await stock_of(database, variant)).levels[0]
    assert (level.quantity, level.reserved, level.allocated) == (5, 0, 0)


async def test_expire_cancels_only_overdue_unpaid_orders(
    database: Database, settings: Settings, redis: Redis
) -> None:
    variant = await create_variant(database, stock=6)
    early, overdue, paid = [await _order(database, settings, redis, variant) for _ in range(3)]
    await _make_overdue(database, overdue.id)
    await _make_overdue(database, paid.id)
    async with database.unit_of_work() as session:
        await service.mark_paid(session, paid.id)

    async with database.unit_of_work() as session:
        assert await service.expire_order(session, early.id, redis) is False
        assert await service.expire_order(session, overdue.id, redis) is True
        assert await service.expire_order(session, overdue.id, redis) is False
        assert await service.expire_order(session, paid.id, redis) is False
        cancelled = await service.get_order(session, overdue.id)

    assert cancelled.status == OrderStatus.CANCELLED
    assert cancelled.cancel_reason == "payment_timeout"
    assert (await stock_of(database, variant)).available == 2


async def test_sweep_cancels_every_overdue_order_and_only_those(
    database: Database, settings: Settings, redis: Redis
) -> None:
    variant = await create_variant(database, stock=6)
    orders = [await _order(database, settings, redis, variant) for _ in range(3)]
    for order in orders[:2]:
        await _make_overdue(database, order.id)

    assert await service.expire_overdue_orders(database, redis) == 2
    assert await service.expire_overdue_orders(database, redis) == 0
    assert (await stock_of(database, variant)).available == 4
