"""The read-only aggregate queries behind the commerce panels.

Each one is a single grouped statement over an indexed time column, so a snapshot costs a few
index range scans whatever the size of the tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, cast, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from agora.core.outbox import OutboxEvent
from agora.flashsale.models import FlashSale
from agora.orders.models import Order
from agora.payments.models import InboxEvent


def _bucket(column: Any, start: dt.datetime, step_s: int) -> ColumnElement[int]:
    """The index of the ``step_s`` bucket since ``start`` that ``column`` falls in."""
    elapsed = func.extract("epoch", column) - literal(start.timestamp())
    return cast(func.floor(elapsed / step_s), BigInteger).label("bucket")


async def orders_placed(session: AsyncSession, since: dt.datetime) -> int:
    """How many orders were placed since ``since``."""
    count = await session.scalar(select(func.count()).where(Order.created_at >= since))
    return int(count or 0)


async def revenue(session: AsyncSession, since: dt.datetime) -> Sequence[tuple[str, int]]:
    """Paid order totals since ``since``, per currency."""
    result = await session.execute(
        select(Order.currency, func.sum(Order.total_amount))
        .where(Order.paid_at >= since)
        .group_by(Order.currency)
        .order_by(Order.currency)
    )
    return result.tuples().all()


async def orders_per_bucket(
    session: AsyncSession, start: dt.datetime, step_s: int
) -> Sequence[tuple[int, int]]:
    """Orders placed per bucket since ``start``."""
    bucket = _bucket(Order.created_at, start, step_s)
    result = await session.execute(
        select(bucket, func.count()).where(Order.created_at >= start).group_by(bucket)
    )
    return result.tuples().all()


async def revenue_per_bucket(
    session: AsyncSession, start: dt.datetime, step_s: int
) -> Sequence[tuple[int, str, int]]:
    """Paid totals per bucket and currency since ``start``."""
    bucket = _bucket(Order.paid_at, start, step_s)
    result = await session.execute(
        select(bucket, Order.currency, func.sum(Order.total_amount))
        .where(Order.paid_at >= start)
        .group_by(bucket, Order.currency)
    )
    return result.tuples().all()


async def callbacks(session: AsyncSession, since: dt.datetime) -> Sequence[tuple[str, str, int]]:
    """Payment callbacks received since ``since``, per provider and outcome."""
    result = await session.execute(
        select(InboxEvent.provider, InboxEvent.outcome, func.count())
        .where(InboxEvent.received_at >= since)
        .group_by(InboxEvent.provider, InboxEvent.outcome)
        .order_by(InboxEvent.provider, InboxEvent.outcome)
    )
    return result.tuples().all()


async def live_sales(session: AsyncSession, now: dt.datetime, limit: int) -> Sequence[FlashSale]:
    """Sales that have started and whose units are not settled yet, ending soonest first."""
    result = await session.scalars(
        select(FlashSale)
        .where(FlashSale.settled_at.is_(None), FlashSale.starts_at <= now)
        .order_by(FlashSale.ends_at)
        .limit(limit)
    )
    return result.all()


async def unrelayed_events(session: AsyncSession) -> int:
    """Outbox events waiting for the relay (served by the partial index on unrelayed rows)."""
    count = await session.scalar(
        select(func.count()).select_from(OutboxEvent).where(OutboxEvent.relayed_at.is_(None))
    )
    return int(count or 0)
