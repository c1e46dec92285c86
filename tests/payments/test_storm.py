"""The callback storm: 2,000 callbacks for 200 orders, with duplicates, reordering and 10%
forged, sent concurrently by real HTTP clients to a real ``agora api`` (two processes).
Every order is paid exactly once, no forgery has any effect, the inbox holds each event once."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from sqlalchemy import func, select

from agora.core.db import Database
from agora.core.outbox import OutboxEvent
from agora.orders.models import Order, OrderStatus
from agora.payments.models import InboxEvent, Payment, PaymentStatus
from agora.settings import Settings
from tests.payments import signing
from tests.payments.keys import RunKeys
from tests.payments.support import open_payment, place_orders
from tests.support import ApiProcess

ORDERS = 200
VICTIMS = 20  # orders that only ever receive forged callbacks
CALLBACKS = 2_000
CLIENTS = 32
PATH = "/api/v1/payments/webhooks/"


@dataclass(frozen=True)
class Callback:
    """One delivery: which provider's endpoint, the body and headers, and whether it is forged."""

    provider: str
    body: bytes
    headers: dict[str, str]
    is_forged: bool = False


def genuine_callbacks(keys: RunKeys, payment: Payment) -> list[Callback]:
    """Nine deliveries of two distinct events (a failure and the success) for one payment."""
    if payment.provider == "stripe":
        intent = signing.stripe_intent(payment.id, payment.amount)
        paid = signing.stripe_event("payment_intent.succeeded", intent)
        failed = signing.stripe_event("payment_intent.payment_failed", intent)
        return [
            Callback("stripe", body, signing.stripe_headers(body))
            for body in [paid] * 6 + [failed] * 3
        ]
    if payment.provider == "alipay":
        alipay = signing.alipay_sdk(keys.alipay_platform, keys.alipay_app)
        paid = signing.alipay_notify(alipay, payment.id, "19.99")
        closed = signing.alipay_notify(alipay, payment.id, "19.99", trade_status="TRADE_CLOSED")
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        return [Callback("alipay", body, form) for body in [paid] * 6 + [closed] * 3]
    paid = signing.wechat_notify(payment.id, payment.amount)
    closed_resource = {
        "mchid": signing.WECHAT_MCHID,
        "appid": signing.WECHAT_APPID,
        "out_trade_no": payment.id.hex,
        "trade_state": "CLOSED",
        "amount": {"total": payment.amount, "currency": "CNY"},
    }
    closed = signing.wechat_notify(payment.id, payment.amount, resource=closed_resource)
    return [
        Callback("wechatpay", body, signing.wechat_headers(body, keys.wechat_platform))
        for body in [paid] * 6 + [closed] * 3
    ]


def forged_callback(keys: RunKeys, payment: Payment, variant: int) -> Callback:
    """A callback that must not verify: wrong key, or tampered after signing."""
    if payment.provider == "stripe":
        body = signing.stripe_event(
            "payment_intent.succeeded", signing.stripe_intent(payment.id, payment.amount)
        )
        secret = "whsec_forger" if variant % 2 else signing.STRIPE_SECRET
        headers = signing.stripe_headers(body, secret=secret)
        if not variant % 2:
            body = body.replace(
                b'"type": "payment_intent.succeeded"', b'"type":"payment_intent.succeeded"'
            )
        return Callback("stripe", body, headers, is_forged=True)
    if payment.provider == "alipay":
        forger = keys.stranger if variant % 2 else keys.alipay_platform
        signed = signing.alipay_notify(
            signing.alipay_sdk(forger, keys.alipay_app), payment.id, "0.01"
        )
        body = signed if variant % 2 else signing.tamper_form(signed, "total_amount", "19.99")
        return Callback("alipay", body, {}, is_forged=True)
    body = signing.wechat_notify(payment.id, payment.amount)
    signer = keys.stranger if variant % 2 else keys.wechat_platform
    headers = signing.wechat_headers(body, signer)
    if not variant % 2:
        body = body.replace(b'"summary"', b'"Summary"')
    return Callback("wechatpay", body, headers, is_forged=True)


async def test_callback_storm_pays_every_order_exactly_once(
    api_server: Callable[..., ApiProcess], database: Database, settings: Settings, keys: RunKeys
) -> None:
    # 200 forgeries would each log a warning
    server = await asyncio.to_thread(api_server, workers=2, AGORA_LOG_LEVEL="ERROR")
    eur = await place_orders(database, settings, ORDERS // 2 + VICTIMS // 2, 1999, "EUR")
    cny = await place_orders(database, settings, ORDERS // 2 + VICTIMS // 2, 1999, "CNY")
    payments = []
    for index, order in enumerate(eur + cny):
        provider = "stripe" if order.currency == "EUR" else ("alipay", "wechatpay")[index % 2]
        payments.append(await open_payment(database, settings, provider, order=order))
    victims = payments[: VICTIMS // 2] + payments[len(eur) : len(eur) + VICTIMS // 2]
    paid = [payment for payment in payments if payment not in victims]
    assert len(paid) == ORDERS

    callbacks = [callback for payment in paid for callback in genuine_callbacks(keys, payment)]
    forged_count = CALLBACKS - len(callbacks)
    targets = victims * (forged_count // len(victims) // 2) + paid[: forged_count // 2]
    callbacks += [forged_callback(keys, payment, n) for n, payment in enumerate(targets)]
    assert len(callbacks) == CALLBACKS
    assert sum(c.is_forged for c in callbacks) == CALLBACKS // 10
    random.Random(6).shuffle(callbacks)

    answers: list[tuple[Callback, int]] = []
    queue: asyncio.Queue[Callback] = asyncio.Queue()
    for callback in callbacks:
        queue.put_nowait(callback)

    async def client() -> None:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
            while not queue.empty():
                callback = queue.get_nowait()
                response = await http.post(
                    PATH + callback.provider, content=callback.body, headers=callback.headers
                )
                answers.append((callback, response.status_code))

    await asyncio.gather(*(client() for _ in range(CLIENTS)))

    assert len(answers) == CALLBACKS
    assert {status for callback, status in answers if callback.is_forged} == {400}
    assert {status for callback, status in answers if not callback.is_forged} <= {200, 204}
    async with database.sessionmaker() as session:
        rows = await session.execute(select(Payment.id, Payment.status))
        statuses = dict(rows.all())
        order_statuses = Counter((await session.scalars(select(Order.status))).all())
        paid_events = Counter(
            (
                await session.scalars(
                    select(OutboxEvent.payload["order_id"].astext).where(
                        OutboxEvent.topic == "order.paid"
                    )
                )
            ).all()
        )
        inbox = (
            await session.execute(
                select(InboxEvent.provider, InboxEvent.event_id, func.count()).group_by(
                    InboxEvent.provider, InboxEvent.event_id
                )
            )
        ).all()
    assert all(statuses[payment.id] is PaymentStatus.SUCCEEDED for payment in paid)
    assert all(statuses[payment.id] is PaymentStatus.PENDING for payment in victims)
    assert order_statuses == {OrderStatus.PAID: ORDERS, OrderStatus.PENDING_PAYMENT: VICTIMS}
    assert len(paid_events) == ORDERS
    assert set(paid_events.values()) == {1}
    assert len(inbox) == 2 * ORDERS
    assert {count for *_, count in inbox} == {1}
