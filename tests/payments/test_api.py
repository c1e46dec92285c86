"""Callbacks over HTTP: each provider's signed callback pays once and is answered as the
provider expects; forgeries, duplicates, mismatches and unknown payments change nothing."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
from sqlalchemy import func, select

from agora.core.db import Database
from agora.core.outbox import OutboxEvent
from agora.core.security import Role
from agora.inventory.models import StockLevel
from agora.orders.models import OrderStatus
from agora.payments.models import PaymentFlag, PaymentStatus
from agora.settings import Settings
from tests.factories import create_user
from tests.payments import signing
from tests.payments.keys import RunKeys
from tests.payments.standin import ProviderStandIn
from tests.payments.support import (
    alipay_payment_and_notify,
    inbox_count,
    open_payment,
    order_status,
    place_orders,
    reload,
)
from tests.support import wait_for

DELIVERIES = 8  # of one notify at once, each on its own connection of the app's pool
STRIPE = "/api/v1/payments/webhooks/stripe"
ALIPAY = "/api/v1/payments/webhooks/alipay"
WECHAT = "/api/v1/payments/webhooks/wechatpay"


def stripe_paid(payment_id: uuid.UUID, amount: int, event_id: str | None = None) -> bytes:
    intent = signing.stripe_intent(payment_id, amount)
    return signing.stripe_event("payment_intent.succeeded", intent, event_id=event_id)


async def test_stripe_webhook_pays_once_and_acknowledges_duplicates(
    client: httpx.AsyncClient, database: Database, settings: Settings, standin: ProviderStandIn
) -> None:
    payment = await open_payment(database, settings, "stripe")
    body = stripe_paid(payment.id, 1999, event_id="evt_once")
    for _ in range(3):
        response = await client.post(STRIPE, content=body, headers=signing.stripe_headers(body))
        assert response.status_code == 200
    stored = await reload(database, payment.id)
    assert stored.status is PaymentStatus.SUCCEEDED
    assert stored.paid_at is not None
    assert await inbox_count(database) == 1


async def test_alipay_notify_is_answered_success(
    client: httpx.AsyncClient, database: Database, settings: Settings, keys: RunKeys
) -> None:
    payment, body = await alipay_payment_and_notify(database, settings, keys)
    response = await client.post(
        ALIPAY, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert (response.status_code, response.text) == (200, "success")
    assert (await reload(database, payment.id)).status is PaymentStatus.SUCCEEDED


async def test_wechat_notify_is_answered_204(
    client: httpx.AsyncClient, database: Database, settings: Settings, keys: RunKeys
) -> None:
    payment = await open_payment(database, settings, "wechatpay", 1999, "CNY")
    body = signing.wechat_notify(payment.id, 1999)
    response = await client.post(
        WECHAT, content=body, headers=signing.wechat_headers(body, keys.wechat_platform)
    )
    assert response.status_code == 204
    assert (await reload(database, payment.id)).status is PaymentStatus.SUCCEEDED


@pytest.mark.parametrize("provider", ["alipay", "wechatpay"])
async def test_concurrent_deliveries_of_one_notify_apply_once(
    client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    keys: RunKeys,
    provider: str,
) -> None:
    payment = await open_payment(database, settings, provider, 1999, "CNY")
    if provider == "alipay":
        alipay = signing.alipay_sdk(keys.alipay_platform, keys.alipay_app)
        body = signing.alipay_notify(alipay, payment.id, "19.99")
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
    else:
        body = signing.wechat_notify(payment.id, 1999)
        headers = signing.wechat_headers(body, keys.wechat_platform)
    path = ALIPAY if provider == "alipay" else WECHAT
    responses = await asyncio.gather(
        *(client.post(path, content=body, headers=headers) for _ in range(DELIVERIES))
    )
    assert {response.status_code for response in responses} == {
        200 if provider == "alipay" else 204
    }
    assert (await reload(database, payment.id)).status is PaymentStatus.SUCCEEDED
    assert await order_status(database, payment.order_id) is OrderStatus.PAID
    assert await inbox_count(database) == 1
    async with database.sessionmaker() as session:
        paid_events = await session.scalar(
            select(func.count()).where(
                OutboxEvent.topic == "order.paid",
                OutboxEvent.payload["order_id"].astext == str(payment.order_id),
            )
        )
        allocated = await session.scalar(select(func.sum(StockLevel.allocated)))
    assert (paid_events, allocated) == (1, 1)


@pytest.mark.parametrize("forgery", ["tampered", "wrong key", "stale"])
async def test_forged_callbacks_are_refused_and_change_nothing(
    client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    keys: RunKeys,
    forgery: str,
) -> None:
    stripe_payment = await open_payment(database, settings, "stripe")
    alipay_payment = await open_payment(database, settings, "alipay", 1999, "CNY")
    wechat_payment = await open_payment(database, settings, "wechatpay", 1999, "CNY")
    stale = int(time.time()) - 400
    stripe_body = stripe_paid(stripe_payment.id, 1999)
    stripe_headers = {
        "tampered": signing.stripe_headers(stripe_paid(stripe_payment.id, 1)),
        "wrong key": signing.stripe_headers(stripe_body, secret="whsec_forger"),
        "stale": signing.stripe_headers(stripe_body, timestamp=stale),
    }[forgery]
    genuine = signing.alipay_sdk(keys.alipay_platform, keys.alipay_app)
    forger = signing.alipay_sdk(keys.stranger, keys.alipay_app)
    alipay_body = {
        "tampered": signing.tamper_form(
            signing.alipay_notify(genuine, alipay_payment.id, "19.99"), "trade_status", "X"
        ),
        "wrong key": signing.alipay_notify(forger, alipay_payment.id, "19.99"),
        "stale": signing.alipay_notify(forger, alipay_payment.id, "19.99"),
    }[forgery]
    wechat_body = signing.wechat_notify(wechat_payment.id, 1999)
    wechat_headers = {
        "tampered": signing.wechat_headers(b"{}", keys.wechat_platform),
        "wrong key": signing.wechat_headers(wechat_body, keys.stranger),
        "stale": signing.wechat_headers(wechat_body, keys.wechat_platform, timestamp=stale),
    }[forgery]

    answers = [
        await client.post(STRIPE, content=stripe_body, headers=stripe_headers),
        await client.post(ALIPAY, content=alipay_body),
        await client.post(WECHAT, content=wechat_body, headers=wechat_headers),
    ]
    assert [answer.status_code for answer in answers] == [400, 400, 400]
    assert answers[1].text != "success"
    for payment in (stripe_payment, alipay_payment, wechat_payment):
        assert (await reload(database, payment.id)).status is PaymentStatus.PENDING
    assert await inbox_count(database) == 0


async def test_wrong_amount_is_flagged_and_never_pays(
    client: httpx.AsyncClient, database: Database, settings: Settings, keys: RunKeys
) -> None:
    payment = await open_payment(database, settings, "alipay", 1999, "CNY")
    alipay = signing.alipay_sdk(keys.alipay_platform, keys.alipay_app)
    body = signing.alipay_notify(alipay, payment.id, "0.01")
    response = await client.post(ALIPAY, content=body)
    assert response.text == "success"  # authentic: resending would not change the amount
    stored = await reload(database, payment.id)
    assert stored.status is PaymentStatus.PENDING
    assert await order_status(database, payment.order_id) is OrderStatus.PENDING_PAYMENT
    assert stored.flag is PaymentFlag.AMOUNT_MISMATCH
    assert "1 CNY" in (stored.flag_detail or "")


async def test_wrong_app_id_is_refused(
    client: httpx.AsyncClient, database: Database, settings: Settings, keys: RunKeys
) -> None:
    payment = await open_payment(database, settings, "alipay", 1999, "CNY")
    alipay = signing.alipay_sdk(keys.alipay_platform, keys.alipay_app)
    body = signing.alipay_notify(alipay, payment.id, "19.99", app_id="2021000000000999")
    assert (await client.post(ALIPAY, content=body)).text == "fail"
    assert (await reload(database, payment.id)).status is PaymentStatus.PENDING
    assert await inbox_count(database) == 0


async def test_callback_for_an_unknown_payment_asks_for_a_resend(
    client: httpx.AsyncClient, database: Database
) -> None:
    body = stripe_paid(uuid.uuid4(), 1999)
    response = await client.post(STRIPE, content=body, headers=signing.stripe_headers(body))
    assert response.status_code == 400
    assert await inbox_count(database) == 0


async def test_failure_after_success_changes_nothing(
    client: httpx.AsyncClient, database: Database, settings: Settings, standin: ProviderStandIn
) -> None:
    payment = await open_payment(database, settings, "stripe")
    paid = stripe_paid(payment.id, 1999)
    failed = signing.stripe_event(
        "payment_intent.payment_failed", signing.stripe_intent(payment.id, 1999)
    )
    for body in (paid, failed):
        await client.post(STRIPE, content=body, headers=signing.stripe_headers(body))
    assert (await reload(database, payment.id)).status is PaymentStatus.SUCCEEDED
    assert await inbox_count(database) == 2


async def test_dev_payment_completes_through_the_api_for_its_buyer_only(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    buyer = await create_user(database, settings)
    (order,) = await place_orders(database, settings, 1, owner=buyer.id)
    payment = await open_payment(database, settings, "dev", order=order)
    url = f"/api/v1/payments/dev/{payment.id}/complete"
    assert (await client.post(url)).status_code == 401
    stranger = await create_user(database, settings)
    refused = await client.post(url, headers=stranger.headers)
    assert (refused.status_code, refused.json()["code"]) == (404, "order_not_found")
    assert (await reload(database, payment.id)).status is PaymentStatus.PENDING
    for _ in range(2):
        response = await client.post(url, headers=buyer.headers)
        assert response.status_code == 200
        assert response.json()["status"] == "succeeded"
    assert await inbox_count(database) == 1
    missing = await client.post(
        f"/api/v1/payments/dev/{uuid.uuid4()}/complete", headers=buyer.headers
    )
    assert missing.status_code == 404


async def test_buyer_opens_payments_with_an_idempotency_key(
    client: httpx.AsyncClient, database: Database, settings: Settings, standin: ProviderStandIn
) -> None:
    buyer = await create_user(database, settings)
    (order,) = await place_orders(database, settings, 1, owner=buyer.id)
    url = f"/api/v1/orders/{order.id}/payments"
    headers = {**buyer.headers, "Idempotency-Key": "pay-1"}
    first = await client.post(url, json={"provider": "stripe"}, headers=headers)
    again = await client.post(url, json={"provider": "stripe"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first.json()["client_secret"]
    assert first.json()["amount"] == {
        "amount": 1999,
        "currency": "EUR",
    }
    assert len(standin.received("stripe")) == 1
    alipay = await client.post(url, json={"provider": "alipay"}, headers=buyer.headers)
    assert alipay.status_code == 422
    assert alipay.json()["code"] == "currency_not_supported"
    fetched = await client.get(first.headers["Location"], headers=buyer.headers)
    assert fetched.json()["id"] == first.json()["id"]
    stranger = await create_user(database, settings)
    assert (
        await client.post(url, json={"provider": "dev"}, headers=stranger.headers)
    ).status_code == 404
    assert (
        await client.get(first.headers["Location"], headers=stranger.headers)
    ).status_code == 404


async def test_staff_refunds_over_http(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    payment = await open_payment(database, settings, "dev")
    staff = await create_user(database, settings, Role.STAFF)
    await client.post(f"/api/v1/payments/dev/{payment.id}/complete", headers=staff.headers)
    buyer = await create_user(database, settings)
    url = f"/api/v1/orders/{payment.order_id}/refunds"
    body = {"amount": {"amount": 500, "currency": "EUR"}, "reason": "damaged"}
    assert (await client.post(url, json=body, headers=buyer.headers)).status_code == 403
    accepted = await client.post(url, json=body, headers=staff.headers)
    assert accepted.status_code == 202
    assert accepted.json()["status"] == "pending"
    too_much = {"amount": {"amount": 1500, "currency": "EUR"}}
    refused = await client.post(url, json=too_much, headers=staff.headers)
    assert refused.status_code == 409
    assert refused.json()["code"] == "refund_exceeds_captured"
    wrong = await client.post(
        url, json={"amount": {"amount": 1, "currency": "USD"}}, headers=staff.headers
    )
    assert wrong.status_code == 422


@pytest.mark.worker
async def test_worker_submits_refunds_to_the_provider(
    client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    celery_worker: object,
) -> None:
    payment = await open_payment(database, settings, "dev")
    staff = await create_user(database, settings, Role.STAFF)
    await client.post(f"/api/v1/payments/dev/{payment.id}/complete", headers=staff.headers)
    response = await client.post(
        f"/api/v1/orders/{payment.order_id}/refunds", json={}, headers=staff.headers
    )
    assert response.status_code == 202

    async def refunded() -> bool:
        return await order_status(database, payment.order_id) is OrderStatus.REFUNDED

    await wait_for(refunded, timeout=60)
    assert (await reload(database, payment.id)).refunded_amount == 1999
