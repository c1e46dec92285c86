"""A payment's life next to its order's: one open payment per order, closed at the provider when
the order is cancelled or expires, and reconciliation that asks providers with no transaction
open and settles refunds whose callback never came."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select, text

from agora.core.db import Database
from agora.core.errors import AgoraError, Conflict
from agora.core.money import Money
from agora.core.security import Role
from agora.orders import service as orders
from agora.orders.models import Order, OrderStatus
from agora.payments import service
from agora.payments.models import Payment, PaymentFlag, PaymentStatus, Refund, RefundStatus
from agora.settings import Settings
from tests.factories import create_user
from tests.payments.standin import ProviderStandIn
from tests.payments.support import (
    backdate,
    captured,
    open_payment,
    order_status,
    place_orders,
    refunds_of,
    reload,
    stripe_charge_refunded,
)
from tests.support import wait_for


async def open_payments_of(database: Database, order_id: uuid.UUID) -> list[Payment]:
    async with database.sessionmaker() as session:
        return list(
            await session.scalars(
                select(Payment).where(
                    Payment.order_id == order_id, Payment.status == PaymentStatus.PENDING
                )
            )
        )


async def test_reconciliation_asks_providers_with_no_transaction_open(
    database: Database, settings: Settings, standin: ProviderStandIn, redis: Redis
) -> None:
    payments = [await open_payment(database, settings, "stripe") for _ in range(3)]
    for payment in payments:
        await backdate(database, Payment.created_at, payment.id)
        standin.stripe_intents[payment.provider_reference or ""].update(
            status="succeeded", amount_received=1999
        )
    open_transactions: list[int] = []

    async def count_open_transactions() -> None:
        async with database.sessionmaker() as session:
            count = await session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
                )
            )
            open_transactions.append(int(count or 0))

    standin.on_request = count_open_transactions
    assert await service.reconcile(database, redis, settings) == 3

    assert open_transactions == [0, 0, 0]  # one query per payment, none inside a transaction
    for payment in payments:
        assert (await reload(database, payment.id)).status is PaymentStatus.SUCCEEDED
        assert await order_status(database, payment.order_id) is OrderStatus.PAID


async def submitted_refund(
    database: Database, redis: Redis, settings: Settings, payment: Payment
) -> uuid.UUID:
    """A full refund of ``payment`` accepted by its provider a while ago, never called back."""
    async with database.unit_of_work() as session:
        refund, _ = await service.refund_payment(session, payment.id, None, "test", None)
    async with database.unit_of_work() as session:
        await service.submit_refund(session, redis, settings, refund.id)
    await backdate(database, Refund.submitted_at, refund.id)
    return refund.id


async def test_reconciliation_settles_refunds_whose_callback_never_came(
    database: Database, settings: Settings, standin: ProviderStandIn, redis: Redis
) -> None:
    wechat = await captured(database, redis, settings, "wechatpay", currency="CNY")
    alipay = await captured(database, redis, settings, "alipay", currency="CNY")
    stripe = await captured(database, redis, settings, "stripe")
    refunds = {
        payment.provider: await submitted_refund(database, redis, settings, payment)
        for payment in (wechat, alipay, stripe)
    }
    await service.reconcile(database, redis, settings)  # all still processing
    for payment in (wechat, alipay, stripe):
        (refund,) = await refunds_of(database, payment.id)
        assert refund.status is RefundStatus.PENDING

    standin.settle_refund(refunds["wechatpay"].hex, "succeeded")
    standin.settle_refund(refunds["alipay"].hex, "succeeded")
    standin.settle_refund(refunds["stripe"].hex, "failed")
    for _ in range(2):  # a second run finds nothing more to do
        await service.reconcile(database, redis, settings)

    for payment in (wechat, alipay):
        (refund,) = await refunds_of(database, payment.id)
        assert refund.status is RefundStatus.SUCCEEDED
        assert (await reload(database, payment.id)).refunded_amount == 1999
        assert await order_status(database, payment.order_id) is OrderStatus.REFUNDED
    (failed,) = await refunds_of(database, stripe.id)
    assert failed.status is RefundStatus.FAILED
    assert (await reload(database, stripe.id)).refund_reserved_amount == 0
    assert await order_status(database, stripe.order_id) is OrderStatus.PAID
    assert standin.refused == []


async def test_an_order_has_one_open_payment_and_another_provider_replaces_it(
    database: Database, settings: Settings, standin: ProviderStandIn
) -> None:
    (order,) = await place_orders(database, settings, 1, currency="CNY")
    alipay = await open_payment(database, settings, "alipay", currency="CNY", order=order)
    standin.trades[alipay.id.hex] = {"trade_status": "WAIT_BUYER_PAY", "total_amount": "19.99"}

    wechat = await open_payment(database, settings, "wechatpay", currency="CNY", order=order)
    again = await open_payment(database, settings, "wechatpay", currency="CNY", order=order)

    assert again.id == wechat.id
    assert (await reload(database, alipay.id)).status is PaymentStatus.CANCELLED
    assert standin.trades[alipay.id.hex]["trade_status"] == "TRADE_CLOSED"
    assert [p.id for p in await open_payments_of(database, order.id)] == [wechat.id]
    native = [r for r in standin.received("wechatpay") if r.path.endswith("/native")]
    assert len(native) == 1

    standin.trades[wechat.id.hex] = {"trade_state": "SUCCESS"}  # the buyer is paying it
    with pytest.raises(Conflict, match="cannot be closed") as refused:
        await open_payment(database, settings, "alipay", currency="CNY", order=order)
    assert refused.value.instance_code == "payment_in_progress"
    assert [p.id for p in await open_payments_of(database, order.id)] == [wechat.id]


async def test_concurrent_requests_leave_one_open_payment(
    database: Database, settings: Settings, standin: ProviderStandIn
) -> None:
    (order,) = await place_orders(database, settings, 1)

    results = await asyncio.gather(
        *(
            open_payment(database, settings, provider, order=order)
            for provider in ["dev", "stripe"] * 5
        ),
        return_exceptions=True,
    )

    assert all(isinstance(r, Payment | AgoraError) for r in results), results
    assert len(await open_payments_of(database, order.id)) == 1


async def test_cancelling_an_order_closes_its_payment_at_the_provider(
    database: Database, settings: Settings, standin: ProviderStandIn, redis: Redis
) -> None:
    stripe = await open_payment(database, settings, "stripe")
    alipay = await open_payment(database, settings, "alipay", currency="CNY")
    wechat = await open_payment(database, settings, "wechatpay", currency="CNY")
    standin.trades[alipay.id.hex] = {"trade_status": "WAIT_BUYER_PAY", "total_amount": "19.99"}
    for payment in (stripe, alipay, wechat):
        async with database.unit_of_work() as session:
            await orders.cancel_order(session, payment.order_id, reason="test", redis=redis)
        # What the job published by the cancellation does (a worker runs it in production).
        assert await service.close_open_payment(database, settings, payment.order_id)
        assert not await service.close_open_payment(database, settings, payment.order_id)
        assert (await reload(database, payment.id)).status is PaymentStatus.CANCELLED

    assert standin.stripe_intents[stripe.provider_reference or ""]["status"] == "canceled"
    assert standin.trades[alipay.id.hex]["trade_status"] == "TRADE_CLOSED"
    assert standin.trades[wechat.id.hex]["trade_state"] == "CLOSED"
    assert standin.refused == []


async def test_a_capture_of_a_closed_payment_is_recorded_and_flagged(
    database: Database, settings: Settings, redis: Redis
) -> None:
    payment = await open_payment(database, settings, "dev")
    async with database.unit_of_work() as session:
        await orders.cancel_order(session, payment.order_id, reason="test", redis=redis)
    await service.close_open_payment(database, settings, payment.order_id)

    stored = await captured(database, redis, settings, "dev", payment=payment)

    assert (stored.status, stored.flag) == (PaymentStatus.SUCCEEDED, PaymentFlag.ORDER_NOT_PAYABLE)


async def test_reconciliation_cancels_the_stripe_intent_of_an_expired_order(
    database: Database, settings: Settings, standin: ProviderStandIn, redis: Redis
) -> None:
    payment = await open_payment(database, settings, "stripe")
    await backdate(database, Payment.created_at, payment.id)
    await backdate(database, Order.payment_due_at, payment.order_id)
    async with database.unit_of_work() as session:
        assert await orders.expire_order(session, payment.order_id, redis)

    # The job the expiry published is lost (no worker here): reconciliation closes the intent.
    await service.reconcile(database, redis, settings)

    assert standin.stripe_intents[payment.provider_reference or ""]["status"] == "canceled"
    assert (await reload(database, payment.id)).status is PaymentStatus.CANCELLED


async def test_payments_expire_at_the_order_deadline(
    database: Database, settings: Settings, standin: ProviderStandIn
) -> None:
    payment = await open_payment(database, settings, "wechatpay", currency="CNY")
    async with database.sessionmaker() as session:
        due = await session.scalar(select(Order.payment_due_at).where(Order.id == payment.order_id))
    assert due is not None
    (sent,) = standin.received("wechatpay")
    expiry = dt.datetime.fromisoformat(json.loads(sent.body)["time_expire"])
    assert expiry == due.replace(microsecond=0)


@pytest.mark.worker
async def test_worker_closes_the_payment_of_an_order_the_buyer_cancels(
    client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    standin: ProviderStandIn,
    celery_worker: object,
) -> None:
    buyer = await create_user(database, settings)
    (order,) = await place_orders(database, settings, 1, owner=buyer.id)
    payment = await open_payment(database, settings, "stripe", order=order)

    cancelled = await client.post(f"/api/v1/orders/{order.id}/cancel", headers=buyer.headers)
    assert cancelled.status_code == 200

    async def closed() -> bool:
        return (await reload(database, payment.id)).status is PaymentStatus.CANCELLED

    await wait_for(closed, timeout=60)
    assert standin.stripe_intents[payment.provider_reference or ""]["status"] == "canceled"


async def test_staff_refund_a_duplicate_capture_without_touching_the_order(
    client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    standin: ProviderStandIn,
    redis: Redis,
) -> None:
    (order,) = await place_orders(database, settings, 1)
    first = await open_payment(database, settings, "dev", order=order)
    second = await open_payment(database, settings, "stripe", order=order)  # replaces the first
    await captured(database, redis, settings, "dev", payment=first)  # the buyer paid both
    duplicate = await captured(database, redis, settings, "stripe", payment=second)
    assert duplicate.flag is PaymentFlag.ORDER_NOT_PAYABLE
    staff = await create_user(database, settings, Role.STAFF)
    url = f"/api/v1/payments/{duplicate.id}/refunds"
    headers = {**staff.headers, "Idempotency-Key": "dup-1"}

    accepted = await client.post(url, json={"reason": "duplicate"}, headers=headers)
    replayed = await client.post(url, json={"reason": "duplicate"}, headers=headers)

    assert accepted.status_code == replayed.status_code == 202
    assert replayed.json() == accepted.json()
    assert accepted.json()["payment_id"] == str(duplicate.id)
    (refund,) = await refunds_of(database, duplicate.id)
    async with database.unit_of_work() as session:
        await service.submit_refund(session, redis, settings, refund.id)
    callback = await stripe_charge_refunded(client, duplicate, 1999)
    assert callback.status_code == 200
    assert (await reload(database, duplicate.id)).refunded_amount == 1999
    assert await order_status(database, order.id) is OrderStatus.PAID
    assert (await reload(database, first.id)).refund_reserved_amount == 0
    pending = await open_payment(database, settings, "dev")
    not_captured = await client.post(
        f"/api/v1/payments/{pending.id}/refunds", json={}, headers=staff.headers
    )
    assert (not_captured.status_code, not_captured.json()["code"]) == (409, "not_refundable")


async def test_order_refunds_honour_an_idempotency_key(
    client: httpx.AsyncClient, database: Database, settings: Settings, redis: Redis
) -> None:
    payment = await captured(database, redis, settings, "dev")
    staff = await create_user(database, settings, Role.STAFF)
    url = f"/api/v1/orders/{payment.order_id}/refunds"
    headers = {**staff.headers, "Idempotency-Key": "refund-1"}
    body = {"amount": Money(amount=500, currency="EUR").model_dump(), "reason": "late"}

    responses = [await client.post(url, json=body, headers=headers) for _ in range(3)]
    reused = await client.post(url, json={**body, "reason": "other"}, headers=headers)

    assert [r.status_code for r in responses] == [202, 202, 202]
    assert len({r.json()["id"] for r in responses}) == 1
    assert responses[-1].headers["Idempotent-Replayed"] == "true"
    assert (reused.status_code, reused.json()["code"]) == (422, "idempotency_key_reused")
    assert len(await refunds_of(database, payment.id)) == 1
    assert (await reload(database, payment.id)).refund_reserved_amount == 500
