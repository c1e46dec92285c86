"""Helpers of the payments tests: open a payment for an order, read tables back."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from agora.core.db import Database
from agora.payments import service
from agora.payments.models import InboxEvent, Payment, Refund
from agora.settings import Settings


async def open_payment(
    database: Database,
    settings: Settings,
    provider: str,
    amount: int = 1999,
    currency: str = "EUR",
) -> Payment:
    """A pending payment of a fresh order awaiting payment."""
    order = service.PayableOrder(uuid.uuid4(), amount, currency, "Test order", True)
    async with database.unit_of_work() as session:
        return await service.create_payment(session, settings, order, provider)


async def reload(database: Database, payment_id: uuid.UUID) -> Payment:
    """A payment as stored now."""
    async with database.sessionmaker() as session:
        payment = await session.get(Payment, payment_id)
        assert payment is not None
        return payment


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
