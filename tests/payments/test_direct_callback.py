"""Callbacks answered before routing (``payments/direct_callback.py``) answer exactly what the
route answers, apply once whichever path a delivery takes, and every callback the middleware
cannot take whole still reaches the route. (The callbacks of ``test_api.py``, forgeries
included, are answered before routing too.)"""

from __future__ import annotations

import httpx
from prometheus_client import REGISTRY

from agora.core.db import Database
from agora.payments.models import PaymentStatus
from agora.settings import Settings
from tests.payments import signing
from tests.payments.keys import RunKeys
from tests.payments.support import alipay_payment_and_notify, inbox_count, open_payment, reload
from tests.payments.test_api import ALIPAY, STRIPE, WECHAT, stripe_paid
from tests.support import routed_requests, served

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
_PER_ANSWER = frozenset({"x-request-id"})


def _shape(response: httpx.Response) -> tuple[int, dict[str, str], bytes]:
    kept = {name: value for name, value in response.headers.items() if name not in _PER_ANSWER}
    return response.status_code, kept, response.content


async def test_each_provider_is_answered_before_routing_as_the_route_answers(
    client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    keys: RunKeys,
    routed: list[str],
) -> None:
    answers: dict[str, list[httpx.Response]] = {}
    for suffix in ("", "?via=route"):  # a query string is not a callback it takes: the route's
        stripe = await open_payment(database, settings, "stripe")
        stripe_body = stripe_paid(stripe.id, 1999)
        ali, ali_body = await alipay_payment_and_notify(database, settings, keys)
        wechat = await open_payment(database, settings, "wechatpay", 1999, "CNY")
        wechat_body = signing.wechat_notify(wechat.id, 1999)
        answers[suffix] = [
            await client.post(
                STRIPE + suffix, content=stripe_body, headers=signing.stripe_headers(stripe_body)
            ),
            await client.post(ALIPAY + suffix, content=ali_body, headers=FORM),
            await client.post(
                WECHAT + suffix,
                content=wechat_body,
                headers=signing.wechat_headers(wechat_body, keys.wechat_platform),
            ),
        ]
        for payment in (stripe, ali, wechat):
            assert (await reload(database, payment.id)).status is PaymentStatus.SUCCEEDED

    assert [answer.status_code for answer in answers[""]] == [200, 200, 204]
    assert [_shape(answer) for answer in answers[""]] == [
        _shape(answer) for answer in answers["?via=route"]
    ]
    assert routed == [f"POST {path}" for path in (STRIPE, ALIPAY, WECHAT)]


async def test_a_delivery_on_either_path_applies_once(
    client: httpx.AsyncClient, database: Database, settings: Settings, routed: list[str]
) -> None:
    payment = await open_payment(database, settings, "stripe")
    body = stripe_paid(payment.id, 1999, event_id="evt_both_paths")
    headers = signing.stripe_headers(body)

    answers = [
        await client.post(STRIPE, content=body, headers=headers),
        await client.post(STRIPE + "?via=route", content=body, headers=headers),
        await client.post(STRIPE, content=body, headers=headers),
    ]

    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert routed == [f"POST {STRIPE}"]
    assert await inbox_count(database) == 1


async def test_callbacks_it_cannot_take_whole_reach_the_route(
    client: httpx.AsyncClient, database: Database, settings: Settings, keys: RunKeys
) -> None:
    payment, body = await alipay_payment_and_notify(database, settings, keys)
    with_nul = signing.tamper_form(body, "body", "a\x00b")

    async with served(settings, payment_providers="alipay,wechatpay") as (only_cny, app):
        with routed_requests(app) as routed:
            answers = [
                await only_cny.post("/api/v1/payments/webhooks/paypal", content=body, headers=FORM),
                await only_cny.post(STRIPE, content=b"{}", headers=signing.stripe_headers(b"{}")),
                await only_cny.post(ALIPAY, content=with_nul, headers=FORM),
                await only_cny.post(ALIPAY, content=body, headers={"Content-Type": "text/plain"}),
            ]

    # Only the last is a callback the route applies (it reads the form whatever its type).
    assert [answer.status_code for answer in answers] == [422, 404, 422, 200]
    assert len(routed) == len(answers)
    assert answers[1].json()["code"] == "provider_not_enabled"
    assert answers[2].headers["content-type"] == "application/problem+json"
    assert (await reload(database, payment.id)).status is PaymentStatus.SUCCEEDED
    assert await inbox_count(database) == 1


async def test_a_direct_callback_is_counted_under_its_route(
    client: httpx.AsyncClient, database: Database, settings: Settings, routed: list[str]
) -> None:
    labels = {"method": "POST", "route": "/api/v1/payments/webhooks/{provider}", "status": "200"}
    before = REGISTRY.get_sample_value("agora_http_requests_total", labels) or 0.0
    payment = await open_payment(database, settings, "stripe")
    body = stripe_paid(payment.id, 1999)

    answer = await client.post(STRIPE, content=body, headers=signing.stripe_headers(body))

    assert (answer.status_code, routed) == (200, [])
    assert REGISTRY.get_sample_value("agora_http_requests_total", labels) == before + 1
