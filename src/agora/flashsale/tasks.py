"""Celery tasks of flash sales: drain a sale's ticket queue, end a sale, reconcile all sales.

Each takes ids only and is safe to run twice, or concurrently: tickets are exactly once by their
primary key, the end of a sale by its ``settled_at`` guard.
"""

from __future__ import annotations

import os
import socket
import uuid

from agora.core.jobs import celery_app, worker_runtime
from agora.flashsale import reconciliation, tickets
from agora.flashsale.reconciliation import WorkerContext
from agora.settings import get_settings


def _context() -> WorkerContext:
    settings = get_settings()
    return WorkerContext(
        consumer=f"{socket.gethostname()}:{os.getpid()}",
        claim_idle_ms=int(settings.flash_sale_claim_idle * 1000),
        payment_timeout=settings.order_payment_timeout,
    )


@celery_app.task(name="agora.flashsale.process_tickets")
def process_tickets(sale_id: str) -> int:
    """Turn the tickets waiting in a sale's queue into orders."""
    context = _context()
    return worker_runtime().run_with_services(
        lambda database, redis: tickets.process_queue(
            database,
            redis,
            uuid.UUID(sale_id),
            context.consumer,
            payment_timeout=context.payment_timeout,
        )
    )


@celery_app.task(name="agora.flashsale.end_sale")
def end_sale(sale_id: str) -> bool:
    """Close a sale at its end and return its unsold units to regular stock."""
    context = _context()
    return worker_runtime().run_with_services(
        lambda database, redis: reconciliation.end_sale(
            database, redis, uuid.UUID(sale_id), context
        )
    )


@celery_app.task(name="agora.flashsale.reconcile")
def reconcile() -> int:
    """Repair and check every running sale, close the ended ones; how many sales were checked."""
    context = _context()
    reports = worker_runtime().run_with_services(
        lambda database, redis: reconciliation.reconcile_all(database, redis, context)
    )
    return len(reports)
