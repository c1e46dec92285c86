"""The shop's side of a snapshot: orders and revenue per minute, payment callbacks, live flash
sales and the queues work waits in.

Headline figures cover the last minute (a rate, comparable at any time); charts and tables cover
the chosen time range. Money stays integer minor units with its currency.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.dependencies import AppServices
from agora.dashboard import repository
from agora.dashboard.queues import queue_depths
from agora.dashboard.ranges import TimeRange
from agora.dashboard.snapshot import Section
from agora.flashsale import ledger

MINUTE = dt.timedelta(minutes=1)
MAX_SALES = 10


async def commerce_section(
    services: AppServices, now: dt.datetime, time_range: TimeRange
) -> dict[str, Any]:
    """The ``commerce`` and ``queues`` parts of a snapshot."""
    async with services.database.sessionmaker() as session:
        commerce = await _commerce(session, services.redis, now, time_range)
        queues = await queue_depths(
            session, services.redis, services.settings.task_queue, commerce["flash_sales"]
        )
    return {"commerce": commerce, "queues": queues}


async def _commerce(
    session: AsyncSession, redis: Redis, now: dt.datetime, time_range: TimeRange
) -> dict[str, Any]:
    """Orders, revenue, callbacks and flash sales, as the panels draw them."""
    start = time_range.start(now)
    orders_per_minute = await repository.orders_placed(session, now - MINUTE)
    revenue_per_minute = await repository.revenue(session, now - MINUTE)
    order_buckets = await repository.orders_per_bucket(session, start, time_range.step_s)
    revenue_buckets = await repository.revenue_per_bucket(session, start, time_range.step_s)
    callbacks = await repository.callbacks(session, start)
    sales = await flash_sales(session, redis, now)
    return {
        "orders_per_minute": orders_per_minute,
        "revenue_per_minute": [
            {"currency": currency, "amount": int(amount)} for currency, amount in revenue_per_minute
        ],
        "orders_series": _series(time_range, ((bucket, count) for bucket, count in order_buckets)),
        "revenue_series": {
            currency: _series(
                time_range,
                (
                    (bucket, int(amount))
                    for bucket, code, amount in revenue_buckets
                    if code == currency
                ),
            )
            for currency in sorted({code for _, code, _ in revenue_buckets})
        },
        "callbacks": [
            {"provider": provider, "outcome": str(outcome), "count": count}
            for provider, outcome, count in callbacks
        ],
        "flash_sales": sales,
        "flash_sale_remaining": sum(sale["remaining"] for sale in sales),
    }


async def flash_sales(
    session: AsyncSession, redis: Redis, now: dt.datetime
) -> list[dict[str, Any]]:
    """Each live sale's quantity, units sold, remaining and queued (Redis is the live truth;
    a sale Redis does not hold any more is drawn from its database row)."""
    sales = []
    for sale in await repository.live_sales(session, now, MAX_SALES):
        units = await ledger.live_units(redis, sale.id)
        remaining = units.remaining if units else sale.quantity - sale.units_ordered
        queued = units.queued_units if units else 0
        sales.append(
            {
                "id": str(sale.id),
                "ends_at": sale.ends_at.isoformat(),
                "quantity": sale.quantity,
                "sold": sale.quantity - remaining,
                "remaining": remaining,
                "queued": queued,
            }
        )
    return sales


def _series(time_range: TimeRange, points: Any) -> list[int]:
    """Bucketed counts as a dense list, one value per bucket, zero where nothing happened."""
    values = [0] * time_range.buckets
    for bucket, value in points:
        if 0 <= bucket < time_range.buckets:
            values[bucket] += value
    return values


SECTIONS = (Section(commerce_section),)
