"""Helpers of the payments tests: real orders with open payments, tables read back."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy import func, select, update
from sqlalchemy.orm import InstrumentedAttribute

from agora.core.db import Database
from agora.orders import service as orders
from agora.orders.models import Order, OrderStatus
from agora.payments import service
from agora.payments.models import InboxEvent, Payment, Refund
from agora.payments.providers.base import CallbackEvent, EventKind
from agora.settings import Settings
from tests.factories import create_user, create_variant
from tests.orders.support import ADDRESS
from tests.payments import signing
from tests.payments.keys import RunKeys


async def place_orders(
    database: Database,
    settings: Settings,
    count: int,
    price: int = 1999,
    currency: str = "EUR",
    owner: uuid.UUID | None = None,
) -> list[Order]:
    """``count`` orders of one unit each, awaiting payment (total = price: free shipping)."""
    variant = await create_variant(database, price=price, currency=currency, stock=count)
    buyer_id = owner or (await create_user(database, settings)).id
    placed = []
    redis = Redis.from_url(settings.redis_url or "")
    async with database.unit_of_work() as session:
        for _ in range(count):
            order = await orders.create_order(
                session,
                buyer_id,
                [orders.LineRequest(variant, 1)],
                orders.Checkout(shipping_address=ADDRESS),
                payment_timeout=900,
                redis=redis,
            )
            placed.append(order)
    await redis.aclose()
    assert all(order.total_amount == price for order in placed)
    return placed


async def open_payment(
    database: Database,
    settings: Settings,
    provider: str,
    amount: int = 1999,
    currency: str = "EUR",
    order: Order | None = None,
) -> Payment:
    """A pending payment of a fresh order awaiting payment."""
    if order is None:
        (order,) = await place_orders(database, settings, 1, amount, currency)
    async with database.unit_of_work() as session:
        return await service.create_payment(session, settings, order.id, provider, user_id=None)


async def alipay_payment_and_notify(
    database: Database, settings: Settings, keys: RunKeys
) -> tuple[Payment, bytes]:
    """A pending Alipay payment of 19.99 CNY, and the notify Alipay sends once it is paid."""
    payment = await open_payment(database, settings, "alipay", 1999, "CNY")
    alipay = signing.alipay_sdk(keys.alipay_platform, keys.alipay_app)
    return payment, signing.alipay_notify(alipay, payment.id, "19.99")


async def reload(database: Database, payment_id: uuid.UUID) -> Payment:
    """A payment as stored now."""
    async with database.sessionmaker() as session:
        payment = await session.get(Payment, payment_id)
        assert payment is not None
        return payment


async def order_status(database: Database, order_id: uuid.UUID) -> OrderStatus:
    """An order's status now."""
    async with database.sessionmaker() as session:
        status = await session.scalar(select(Order.status).where(Order.id == order_id))
        assert status is not None
        return status


async def inbox_count(database: Database) -> int:
    """How many callbacks the inbox holds."""
    async with database.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(InboxEvent)) or 0)


async def refunds_of(database: Database, payment_id: uuid.UUID) -> list[Refund]:
    """A payment's refunds, oldest first."""
    async with database.sessionmaker() as session:
        return list(
            await session.scalars(
                select(Refund).where(Refund.payment_id == payment_id).order_by(Refund.created_at)
            )
        )


async def backdate(
    database: Database, column: InstrumentedAttribute[Any], row_id: uuid.UUID
) -> None:
    """Move a row's timestamp an hour back, as if that moment were long past."""
    table: Any = column.class_
    async with database.unit_of_work() as session:
        await session.execute(
            update(table).where(table.id == row_id).values({column: column - dt.timedelta(hours=1)})
        )


async def stripe_charge_refunded(
    client: httpx.AsyncClient, payment: Payment, amount_refunded: int
) -> httpx.Response:
    """Stripe's signed ``charge.refunded`` webhook for a payment's charge, posted to the API."""
    charge = {
        "id": f"ch_{payment.id.hex[:12]}",
        "payment_intent": payment.provider_reference,
        "amount_refunded": amount_refunded,
        "currency": payment.currency.lower(),
    }
    body = signing.stripe_event("charge.refunded", charge)
    return await client.post(
        "/api/v1/payments/webhooks/stripe", content=body, headers=signing.stripe_headers(body)
    )


async def captured(
    database: Database,
    redis: Redis,
    settings: Settings,
    provider: str,
    currency: str = "EUR",
    payment: Payment | None = None,
) -> Payment:
    """A payment whose success callback was applied (of a new order unless ``payment`` given)."""
    if payment is None:
        payment = await open_payment(database, settings, provider, currency=currency)
    event = CallbackEvent(
        event_id=f"test-capture-{payment.id}",
        event_type="test",
        kind=EventKind.PAYMENT_SUCCEEDED,
        payment_id=payment.id,
        amount=payment.amount,
        currency=payment.currency,
    )
    async with database.unit_of_work() as session:
        await service.apply_event(session, redis, provider, event)
    return await reload(database, payment.id)
