"""A broker outage never changes the answer of a committed request: checkout and a refund
answer as usual while the API cannot reach the broker, and the work they asked for (the
unpaid order's expiry, the refund's submission) runs once a worker can reach it."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import select

from agora.core.db import Database
from agora.core.jobs import ScheduledJob
from agora.core.security import Role
from agora.orders.models import Order, OrderStatus
from agora.payments.models import Refund, RefundStatus
from agora.payments.service import SUBMIT_REFUND_TASK
from agora.settings import Settings
from tests.factories import create_carts, create_user, create_users, create_variant, stock_of
from tests.orders.support import ADDRESS
from tests.support import ApiProcess, BeatProcess, WorkerProcess, free_port, wait_for

pytestmark = pytest.mark.worker
API = "/api/v1"


async def _status(database: Database, order_id: str) -> OrderStatus:
    async with database.unit_of_work() as session:
        order = await session.get(Order, uuid.UUID(order_id))
        assert order is not None
        return order.status


async def _refund(database: Database) -> Refund:
    async with database.unit_of_work() as session:
        refund = await session.scalar(select(Refund))
        assert refund is not None
        return refund


@pytest.mark.timeout(240)
async def test_checkout_and_refund_answer_while_the_broker_is_down_and_their_jobs_run_after(
    api_server: Callable[..., ApiProcess],
    celery_beat: Callable[..., BeatProcess],
    service_env: dict[str, str],
    database: Database,
    settings: Settings,
) -> None:
    dead_broker = f"redis://127.0.0.1:{free_port()}/0"
    server = api_server(AGORA_BROKER_URL=dead_broker, AGORA_ORDER_PAYMENT_TIMEOUT="3")
    variant = await create_variant(database, stock=5)
    unpaid_buyer, paying_buyer = await create_users(database, settings, 2)
    staff = await create_user(database, settings, Role.STAFF)
    unpaid_cart, paying_cart = await create_carts(
        database, [unpaid_buyer, paying_buyer], {variant: 1}
    )

    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
        unpaid = await http.post(
            f"{API}/orders",
            json={"cart_id": str(unpaid_cart), "shipping_address": ADDRESS},
            headers=unpaid_buyer.headers,
        )
        assert unpaid.status_code == 201, unpaid.text
        paid = await http.post(
            f"{API}/orders",
            json={"cart_id": str(paying_cart), "shipping_address": ADDRESS},
            headers=paying_buyer.headers,
        )
        assert paid.status_code == 201, paid.text
        paid_id = paid.json()["id"]
        payment = await http.post(
            f"{API}/orders/{paid_id}/payments",
            json={"provider": "dev"},
            headers=paying_buyer.headers,
        )
        assert payment.status_code == 201, payment.text
        completed = await http.post(
            f"{API}/payments/dev/{payment.json()['id']}/complete", headers=paying_buyer.headers
        )
        assert completed.status_code == 200, completed.text
        refund = await http.post(f"{API}/orders/{paid_id}/refunds", json={}, headers=staff.headers)
        assert refund.status_code == 202, refund.text

    # The refund's submission waits as a row, unpublished, for as long as the broker is away.
    async with database.unit_of_work() as session:
        waiting = (await session.scalars(select(ScheduledJob))).all()
    assert [(job.name, job.published_at) for job in waiting] == [(SUBMIT_REFUND_TASK, None)]
    assert (await _refund(database)).status == RefundStatus.PENDING

    # The broker is back (for the worker and beat): the expiry and the refund both happen.
    worker = WorkerProcess(env=service_env)
    worker.start()
    try:
        celery_beat(AGORA_ORDER_EXPIRY_SWEEP_INTERVAL="1", AGORA_OUTBOX_RELAY_INTERVAL="1")

        async def both_done() -> bool:
            expired = await _status(database, unpaid.json()["id"]) == OrderStatus.CANCELLED
            return expired and (await _refund(database)).status == RefundStatus.SUCCEEDED

        await wait_for(both_done, timeout=90, interval=0.2)
    finally:
        worker.stop()
    assert await _status(database, paid_id) == OrderStatus.REFUNDED
    assert (await stock_of(database, variant)).available == 5
