"""Refunds (never more than captured, even concurrently; submitted to the provider; settled by
its callback) and reconciliation (a lost callback does not leave a paid payment pending)."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import update

from agora.core.db import Database
from agora.core.errors import Conflict
from agora.core.money import Money
from agora.orders import service as orders
from agora.orders.models import OrderStatus
from agora.payments import service
from agora.payments.models import Payment, PaymentFlag, PaymentStatus, RefundStatus
from agora.settings import Settings
from tests.payments import signing
from tests.payments.keys import RunKeys
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


async def refund(database: Database, order_id: uuid.UUID, amount: int | None) -> uuid.UUID:
    money = None if amount is None else Money(amount=amount, currency="EUR")
    async with database.unit_of_work() as session:
        refund, _ = await service.request_refund(session, order_id, money, "test", None)
        return refund.id


async def test_refunds_never_exceed_the_capture_even_concurrently(
    database: Database, settings: Settings, redis: Redis
) -> None:
    payment = await captured(database, redis, settings, "dev")
    results = await asyncio.gather(
        *(refund(database, payment.order_id, 500) for _ in range(10)), return_exceptions=True
    )
    accepted = [result for result in results if isinstance(result, uuid.UUID)]
    refused = [result for result in results if isinstance(result, Conflict)]
    assert (len(accepted), len(refused)) == (3, 7)
    assert await refund(database, payment.order_id, None)  # the last 499
    with pytest.raises(Conflict, match="exceed"):
        await refund(database, payment.order_id, 1)
    assert (await reload(database, payment.id)).refund_reserved_amount == 1999


async def test_refund_of_an_unpaid_order_is_refused(database: Database, settings: Settings) -> None:
    payment = await open_payment(database, settings, "dev")
    with pytest.raises(Conflict, match="no captured payment"):
        await refund(database, payment.order_id, 100)


async def test_dev_refund_settles_on_submission(
    database: Database, settings: Settings, redis: Redis
) -> None:
    payment = await captured(database, redis, settings, "dev")
    refund_id = await refund(database, payment.order_id, 700)
    async with database.unit_of_work() as session:
        await service.submit_refund(session, redis, settings, refund_id)
    async with database.unit_of_work() as session:
        await service.submit_refund(
            session, redis, settings, refund_id
        )  # a second run changes nothing
    assert (await reload(database, payment.id)).refunded_amount == 700
    assert await order_status(database, payment.order_id) is OrderStatus.PAID
    rest = await refund(database, payment.order_id, None)
    async with database.unit_of_work() as session:
        await service.submit_refund(session, redis, settings, rest)
    assert await order_status(database, payment.order_id) is OrderStatus.REFUNDED


async def test_capture_for_a_cancelled_order_is_flagged(
    database: Database, settings: Settings, redis: Redis
) -> None:
    payment = await open_payment(database, settings, "dev")
    async with database.unit_of_work() as session:
        await orders.cancel_order(session, payment.order_id, reason="test", redis=redis)
    stored = await captured(database, redis, settings, "dev", payment=payment)
    assert stored.flag is PaymentFlag.ORDER_NOT_PAYABLE
    assert await order_status(database, payment.order_id) is OrderStatus.CANCELLED


async def test_second_capture_of_a_paid_order_is_flagged_for_refund(
    database: Database, settings: Settings, redis: Redis
) -> None:
    (order,) = await place_orders(database, settings, 1)
    first = await open_payment(database, settings, "dev", order=order)
    second = await open_payment(database, settings, "stripe", order=order)
    await captured(database, redis, settings, "dev", payment=first)
    stored = await captured(database, redis, settings, "stripe", payment=second)
    assert stored.status is PaymentStatus.SUCCEEDED
    assert stored.flag is PaymentFlag.ORDER_NOT_PAYABLE
    assert str(first.id) in (stored.flag_detail or "")
    assert (await reload(database, first.id)).flag is None


async def test_stripe_refund_is_submitted_then_settled_by_charge_refunded(
    client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    standin: ProviderStandIn,
    redis: Redis,
) -> None:
    payment = await captured(database, redis, settings, "stripe")
    first = await refund(database, payment.order_id, 500)
    second = await refund(database, payment.order_id, 300)
    for refund_id in (first, second):
        async with database.unit_of_work() as session:
            await service.submit_refund(session, redis, settings, refund_id)
    sent = [r for r in standin.received("stripe") if r.path == "/v1/refunds"]
    assert [r.headers["Idempotency-Key"] for r in sent] == [
        f"refund-{first.hex}",
        f"refund-{second.hex}",
    ]

    response = await stripe_charge_refunded(client, payment, 500)
    assert response.status_code == 200
    statuses = [r.status for r in await refunds_of(database, payment.id)]
    assert statuses == [RefundStatus.SUCCEEDED, RefundStatus.PENDING]
    assert (await reload(database, payment.id)).refunded_amount == 500


async def test_wechat_refund_notify_settles_the_refund_it_names(
    client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    standin: ProviderStandIn,
    keys: RunKeys,
    redis: Redis,
) -> None:
    payment = await captured(database, redis, settings, "wechatpay", currency="CNY")
    refund_id = await refund(database, payment.order_id, None)
    async with database.unit_of_work() as session:
        await service.submit_refund(session, redis, settings, refund_id)
    assert standin.refused == []
    assert len(standin.received("wechatpay")) == 2
    resource = {
        "mchid": signing.WECHAT_MCHID,
        "out_trade_no": payment.id.hex,
        "out_refund_no": refund_id.hex,
        "refund_status": "SUCCESS",
        "amount": {"total": 1999, "refund": 1999, "currency": "CNY"},
    }
    body = signing.wechat_notify(payment.id, 1999, event_type="REFUND.SUCCESS", resource=resource)
    response = await client.post(
        "/api/v1/payments/webhooks/wechatpay",
        content=body,
        headers=signing.wechat_headers(body, keys.wechat_platform),
    )
    assert response.status_code == 204
    (settled,) = await refunds_of(database, payment.id)
    assert settled.status is RefundStatus.SUCCEEDED
    assert (await reload(database, payment.id)).refunded_amount == 1999


async def test_refund_refused_by_the_provider_frees_its_amount(
    database: Database, settings: Settings, standin: ProviderStandIn, redis: Redis
) -> None:
    payment = await captured(database, redis, settings, "stripe")
    async with database.unit_of_work() as session:
        await session.execute(
            update(Payment).where(Payment.id == payment.id).values(provider_reference=None)
        )
    refund_id = await refund(database, payment.order_id, 1999)
    async with database.unit_of_work() as session:
        await service.submit_refund(session, redis, settings, refund_id)
    (failed,) = await refunds_of(database, payment.id)
    assert failed.status is RefundStatus.FAILED
    assert (await reload(database, payment.id)).refund_reserved_amount == 0


async def test_reconciliation_applies_what_a_lost_callback_would_have(
    database: Database, settings: Settings, standin: ProviderStandIn, redis: Redis
) -> None:
    paid = await open_payment(database, settings, "stripe")
    still_open = await open_payment(database, settings, "stripe")
    alipay_paid = await open_payment(database, settings, "alipay", 1999, "CNY")
    wrong_amount = await open_payment(database, settings, "wechatpay", 1999, "CNY")
    recent = await open_payment(database, settings, "stripe")
    for payment in (paid, still_open, alipay_paid, wrong_amount):
        await backdate(database, Payment.created_at, payment.id)
    for payment in (paid, recent):
        intent = standin.stripe_intents[payment.provider_reference or ""]
        intent.update(status="succeeded", amount_received=1999)
    standin.trades[alipay_paid.id.hex] = {"trade_status": "TRADE_SUCCESS", "total_amount": "19.99"}
    standin.trades[wrong_amount.id.hex] = {
        "trade_state": "SUCCESS",
        "transaction_id": "4200x",
        "amount": {"total": 1, "currency": "CNY"},
    }

    for _ in range(2):  # a second run finds nothing more to do
        await service.reconcile(database, redis, settings)

    assert (await reload(database, paid.id)).status is PaymentStatus.SUCCEEDED
    assert (await reload(database, alipay_paid.id)).status is PaymentStatus.SUCCEEDED
    assert (await reload(database, still_open.id)).status is PaymentStatus.PENDING
    assert (await reload(database, recent.id)).status is PaymentStatus.PENDING  # not overdue yet
    flagged = await reload(database, wrong_amount.id)
    assert (flagged.status, flagged.flag) == (PaymentStatus.PENDING, PaymentFlag.AMOUNT_MISMATCH)
