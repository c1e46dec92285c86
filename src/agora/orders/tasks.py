"""Celery tasks of orders: cancel an unpaid order at its deadline, and the periodic sweep."""

from __future__ import annotations

import uuid

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.jobs import celery_app, worker_runtime
from agora.orders import service
from agora.orders.service import EXPIRE_ORDER_TASK, EXPIRE_OVERDUE_ORDERS_TASK

__all__ = ["EXPIRE_ORDER_TASK", "EXPIRE_OVERDUE_ORDERS_TASK"]


@celery_app.task(name=EXPIRE_ORDER_TASK)
def expire_order(order_id: str) -> bool:
    """Cancel the order if it is still unpaid past its deadline (safe to run twice)."""

    async def expire(session: AsyncSession, _: Redis) -> bool:
        return await service.expire_order(session, uuid.UUID(order_id))

    return worker_runtime().run(expire)


@celery_app.task(name=EXPIRE_OVERDUE_ORDERS_TASK)
def expire_overdue_orders() -> int:
    """Queue the expiry of every overdue unpaid order (catches tasks a killed worker lost)."""

    async def sweep(session: AsyncSession, _: Redis) -> int:
        return await service.schedule_overdue_expiries(session)

    return worker_runtime().run(sweep)
