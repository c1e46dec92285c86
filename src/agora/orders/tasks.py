"""Celery task of orders: the periodic sweep that cancels unpaid orders past their deadline."""

from __future__ import annotations

from agora.core.jobs import celery_app, worker_runtime
from agora.orders import service
from agora.orders.service import EXPIRE_OVERDUE_ORDERS_TASK

__all__ = ["EXPIRE_OVERDUE_ORDERS_TASK"]


@celery_app.task(name=EXPIRE_OVERDUE_ORDERS_TASK)
def expire_overdue_orders() -> int:
    """Cancel every overdue unpaid order, each in its own transaction (safe to run twice)."""
    return worker_runtime().run_with_services(service.expire_overdue_orders)
