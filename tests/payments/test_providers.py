"""Providers on their own: callbacks signed by the providers' SDKs are accepted, forgeries are
refused; outbound calls reach the stand-in signed as the provider requires."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import stripe

from agora.payments.providers import enabled_providers
from agora.payments.providers.alipay import AlipayProvider
from agora.payments.providers.base import (
    CallbackRejected,
    EventKind,
    PaymentLookup,
    PaymentRequest,
    ProviderError,
    RefundLookup,
    RefundRequest,
    RemoteStatus,
)
from agora.payments.providers.keys import load_private_key, load_public_key
from agora.payments.providers.stripe import StripeProvider
from agora.payments.providers.wechatpay import WechatPayProvider
from agora.settings import Settings
from tests.payments import signing
from tests.payments.keys import RunKeys
from tests.payments.standin import ProviderStandIn

PAYMENT_ID = uuid.UUID("8f1c2a9e-3b4d-4e5f-9a0b-1c2d3e4f5a6b")
REFUND_ID = uuid.UUID("0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f")
EXPIRES_AT = dt.datetime(2026, 11, 26, 12, 15, 30, tzinfo=dt.UTC)


def stripe_provider(settings: Settings) -> StripeProvider:
    provider = enabled_providers(settings)["stripe"]
    assert isinstance(provider, StripeProvider)
    return provider


def alipay_provider(settings: Settings) -> AlipayProvider:
    provider = enabled_providers(settings)["alipay"]
    assert isinstance(provider, AlipayProvider)
    return provider


def wechat_provider(settings: Settings) -> WechatPayProvider:
    provider = enabled_providers(settings)["wechatpay"]
    assert isinstance(provider, WechatPayProvider)
    return provider


def request_for(amount: int, currency: str) -> PaymentRequest:
    return PaymentRequest(
        PAYMENT_ID, amount, currency, "Order 42", "https://shop.example.com/cb", EXPIRES_AT
    )


# Stripe


def test_stripe_event_signed_by_the_sdk_is_read(settings: Settings) -> None:
    body = signing.stripe_event(
        "payment_intent.succeeded", signing.stripe_intent(PAYMENT_ID, 1999), event_id="evt_1"
    )
    event = stripe_provider(settings).parse_callback(body, lower(signing.stripe_headers(body)))
    assert (event.event_id, event.kind, event.payment_id) == (
        "evt_1",
        EventKind.PAYMENT_SUCCEEDED,
        PAYMENT_ID,
    )
    assert (event.amount, event.currency) == (1999, "EUR")


def test_stripe_accepts_any_v1_during_secret_rotation(settings: Settings) -> None:
    body = signing.stripe_event("payment_intent.succeeded", signing.stripe_intent(PAYMENT_ID, 5))
    timestamp = int(time.time())
    old = stripe.WebhookSignature.generate_signature_header(body.decode(), "whsec_old", timestamp)
    new = stripe.WebhookSignature.generate_signature_header(
        body.decode(), signing.STRIPE_SECRET, timestamp
    )
    header = f"{old},{new.split(',')[1]}"
    event = stripe_provider(settings).parse_callback(body, {"stripe-signature": header})
    assert event.kind is EventKind.PAYMENT_SUCCEEDED


@pytest.mark.parametrize("forgery", ["tampered body", "wrong secret", "stale", "future", "none"])
def test_stripe_refuses_forgeries(settings: Settings, forgery: str) -> None:
    body = signing.stripe_event("payment_intent.succeeded", signing.stripe_intent(PAYMENT_ID, 5))
    headers = {
        "tampered body": signing.stripe_headers(body),
        "wrong secret": signing.stripe_headers(body, secret="whsec_someone_else"),
        "stale": signing.stripe_headers(body, timestamp=int(time.time()) - 301),
        "future": signing.stripe_headers(body, timestamp=int(time.time()) + 301),
        "none": {},
    }[forgery]
    if forgery == "tampered body":
        body = body.replace(b'"amount": 5', b'"amount": 6')
    with pytest.raises(CallbackRejected):
        stripe_provider(settings).parse_callback(body, lower(headers))


async def test_stripe_create_sends_the_bearer_key_and_form(
    settings: Settings, standin: ProviderStandIn
) -> None:
    created = await stripe_provider(settings).create_payment(request_for(1999, "EUR"))
    assert created.client_secret
    assert created.provider_reference
    (sent,) = standin.received("stripe")
    form = dict(parse_qsl(sent.body.decode()))
    assert form["amount"] == "1999"
    assert form["currency"] == "eur"
    assert form["metadata[payment_id]"] == PAYMENT_ID.hex
    assert sent.headers["Idempotency-Key"] == f"payment-{PAYMENT_ID.hex}"


async def test_stripe_calls_are_retried_on_5xx(
    settings: Settings, standin: ProviderStandIn
) -> None:
    standin.failures_to_inject = 2
    created = await stripe_provider(settings).create_payment(request_for(100, "EUR"))
    assert created.provider_reference
    standin.failures_to_inject = 3  # more than the retry budget (2)
    with pytest.raises(ProviderError) as raised:
        await stripe_provider(settings).create_payment(request_for(100, "EUR"))
    assert raised.value.is_retryable


async def test_stripe_cancels_the_intent_and_queries_refunds(
    settings: Settings, standin: ProviderStandIn
) -> None:
    provider = stripe_provider(settings)
    created = await provider.create_payment(request_for(1999, "EUR"))
    lookup = PaymentLookup(PAYMENT_ID, created.provider_reference, 1999, "EUR")
    for _ in range(2):  # cancelling a cancelled intent is fine
        await provider.close(lookup)
    assert standin.stripe_intents[created.provider_reference or ""]["status"] == "canceled"
    cancel = [r for r in standin.received("stripe") if r.path.endswith("/cancel")]
    assert cancel[0].headers["Idempotency-Key"] == f"cancel-{PAYMENT_ID.hex}"
    standin.stripe_intents[created.provider_reference or ""]["status"] = "succeeded"
    with pytest.raises(ProviderError):
        await provider.close(lookup)

    submitted = await provider.refund(RefundRequest(REFUND_ID, lookup, 500, "test", "x"))
    refund = RefundLookup(REFUND_ID, submitted.provider_reference, lookup)
    assert await provider.query_refund(refund) is RemoteStatus.PENDING
    standin.settle_refund(REFUND_ID.hex, "succeeded")
    assert await provider.query_refund(refund) is RemoteStatus.SUCCEEDED


# Alipay


def test_alipay_notify_signed_by_the_sdk_is_read(settings: Settings, keys: RunKeys) -> None:
    alipay = signing.alipay_sdk(keys.alipay_platform, keys.alipay_app)
    body = signing.alipay_notify(alipay, PAYMENT_ID, "19.99", notify_id="n1")
    event = alipay_provider(settings).parse_callback(body, {})
    assert (event.event_id, event.kind, event.payment_id) == (
        "n1",
        EventKind.PAYMENT_SUCCEEDED,
        PAYMENT_ID,
    )
    assert (event.amount, event.currency) == (1999, "CNY")


@pytest.mark.parametrize("forgery", ["tampered amount", "wrong key", "wrong app id", "no sign"])
def test_alipay_refuses_forgeries(settings: Settings, keys: RunKeys, forgery: str) -> None:
    genuine = signing.alipay_sdk(keys.alipay_platform, keys.alipay_app)
    stranger = signing.alipay_sdk(keys.stranger, keys.alipay_app)
    body = {
        "tampered amount": lambda: signing.tamper_form(
            signing.alipay_notify(genuine, PAYMENT_ID, "0.01"), "total_amount", "19.99"
        ),
        "wrong key": lambda: signing.alipay_notify(stranger, PAYMENT_ID, "19.99"),
        "wrong app id": lambda: signing.alipay_notify(
            genuine, PAYMENT_ID, "19.99", app_id="2021000000000999"
        ),
        "no sign": lambda: b"notify_id=1&app_id=2021000000000001&out_trade_no=x",
    }[forgery]()
    with pytest.raises(CallbackRejected):
        alipay_provider(settings).parse_callback(body, {})


async def test_alipay_page_pay_url_is_signed_as_the_sdk_signs(
    settings: Settings, keys: RunKeys
) -> None:
    created = await alipay_provider(settings).create_payment(request_for(1999, "CNY"))
    assert created.redirect_url is not None
    url = urlsplit(created.redirect_url)
    assert url.path == "/gateway.do"
    params = dict(parse_qsl(url.query))
    signature = params.pop("sign")
    assert params["method"] == "alipay.trade.page.pay"
    assert params["app_id"] == "2021000000000001"
    assert '"total_amount":"19.99"' in params["biz_content"]
    ours = signing.alipay_sdk(keys.alipay_app, keys.alipay_platform)
    expected = ours.sign_data(dict(params)).rsplit("&sign=", 1)[1]
    assert signature == dict(parse_qsl("sign=" + expected))["sign"]


async def test_alipay_refund_and_query_reach_the_gateway_signed(
    settings: Settings, standin: ProviderStandIn
) -> None:
    provider = alipay_provider(settings)
    lookup = PaymentLookup(PAYMENT_ID, None, 1999, "CNY")
    assert (await provider.query(lookup)).status is RemoteStatus.PENDING
    standin.trades[PAYMENT_ID.hex] = {
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "19.99",
        "trade_no": "2026x",
    }
    remote = await provider.query(lookup)
    assert (remote.status, remote.amount) == (RemoteStatus.SUCCEEDED, 1999)
    assert standin.refused == []
    assert [r.path for r in standin.received("alipay")] == ["alipay.trade.query"] * 2


async def test_alipay_page_pay_expires_with_the_order(settings: Settings) -> None:
    created = await alipay_provider(settings).create_payment(request_for(1999, "CNY"))
    assert created.redirect_url is not None
    biz = json.loads(dict(parse_qsl(urlsplit(created.redirect_url).query))["biz_content"])
    assert biz["time_expire"] == "2026-11-26 20:15:30"  # Beijing time


async def test_alipay_close_and_refund_query(settings: Settings, standin: ProviderStandIn) -> None:
    provider = alipay_provider(settings)
    lookup = PaymentLookup(PAYMENT_ID, None, 1999, "CNY")
    await provider.close(lookup)  # the buyer never opened the page: nothing to close
    standin.trades[PAYMENT_ID.hex] = {"trade_status": "WAIT_BUYER_PAY", "total_amount": "19.99"}
    await provider.close(lookup)
    assert standin.trades[PAYMENT_ID.hex]["trade_status"] == "TRADE_CLOSED"
    standin.trades[PAYMENT_ID.hex]["trade_status"] = "TRADE_SUCCESS"
    with pytest.raises(ProviderError, match="TRADE_STATUS_ERROR"):
        await provider.close(lookup)

    await provider.refund(RefundRequest(REFUND_ID, lookup, 500, "test", "https://x/cb"))
    refund = RefundLookup(REFUND_ID, None, lookup)
    assert await provider.query_refund(refund) is RemoteStatus.PENDING
    standin.settle_refund(REFUND_ID.hex, "succeeded")
    assert await provider.query_refund(refund) is RemoteStatus.SUCCEEDED
    assert standin.refused == []
    sent = [r for r in standin.received("alipay") if r.path == "alipay.trade.fastpay.refund.query"]
    assert json.loads(sent[0].body)["out_request_no"] == REFUND_ID.hex


# WeChat Pay


def test_wechat_notify_signed_by_the_sdk_is_read(settings: Settings, keys: RunKeys) -> None:
    body = signing.wechat_notify(PAYMENT_ID, 1999, notify_id="w1")
    event = wechat_provider(settings).parse_callback(
        body, lower(signing.wechat_headers(body, keys.wechat_platform))
    )
    assert (event.event_id, event.kind, event.payment_id, event.amount) == (
        "w1",
        EventKind.PAYMENT_SUCCEEDED,
        PAYMENT_ID,
        1999,
    )


@pytest.mark.parametrize(
    "forgery", ["tampered body", "wrong key", "stale", "wrong serial", "wrong apiv3 key", "mchid"]
)
def test_wechat_refuses_forgeries(settings: Settings, keys: RunKeys, forgery: str) -> None:
    body = signing.wechat_notify(PAYMENT_ID, 1999)
    headers = signing.wechat_headers(body, keys.wechat_platform)
    if forgery == "tampered body":
        body = body.replace(b"TRANSACTION.SUCCESS", b"TRANSACTION.SUCCESS ")
    elif forgery == "wrong key":
        headers = signing.wechat_headers(body, keys.stranger)
    elif forgery == "stale":
        headers = signing.wechat_headers(
            body, keys.wechat_platform, timestamp=int(time.time()) - 301
        )
    elif forgery == "wrong serial":
        headers = signing.wechat_headers(body, keys.wechat_platform, serial="OTHER")
    elif forgery == "wrong apiv3 key":
        body = signing.wechat_notify(PAYMENT_ID, 1999, apiv3_key="f" * 32)
        headers = signing.wechat_headers(body, keys.wechat_platform)
    else:
        resource = {"mchid": "1900000999", "appid": signing.WECHAT_APPID, "trade_state": "SUCCESS"}
        body = signing.wechat_notify(PAYMENT_ID, 1999, resource=resource)
        headers = signing.wechat_headers(body, keys.wechat_platform)
    with pytest.raises(CallbackRejected):
        wechat_provider(settings).parse_callback(body, lower(headers))


async def test_wechat_native_pay_is_signed_and_its_answer_verified(
    settings: Settings, standin: ProviderStandIn
) -> None:
    created = await wechat_provider(settings).create_payment(request_for(1999, "CNY"))
    assert created.code_url is not None
    assert created.code_url.startswith("weixin://")
    assert standin.refused == []
    (sent,) = standin.received("wechatpay")
    assert sent.headers["Authorization"].startswith("WECHATPAY2-SHA256-RSA2048 mchid=")
    assert b'"total":1999' in sent.body
    assert PAYMENT_ID.hex.encode() in sent.body


async def test_wechat_native_pay_expires_with_the_order_and_closes(
    settings: Settings, standin: ProviderStandIn
) -> None:
    provider = wechat_provider(settings)
    await provider.create_payment(request_for(1999, "CNY"))
    (sent,) = standin.received("wechatpay")
    assert json.loads(sent.body)["time_expire"] == "2026-11-26T20:15:30+08:00"
    lookup = PaymentLookup(PAYMENT_ID, None, 1999, "CNY")
    await provider.close(lookup)
    assert standin.trades[PAYMENT_ID.hex]["trade_state"] == "CLOSED"
    closing = standin.received("wechatpay")[-1]
    assert closing.path == f"/v3/pay/transactions/out-trade-no/{PAYMENT_ID.hex}/close"
    assert json.loads(closing.body) == {"mchid": signing.WECHAT_MCHID}
    standin.trades[PAYMENT_ID.hex]["trade_state"] = "SUCCESS"
    with pytest.raises(ProviderError, match="400"):
        await provider.close(lookup)


async def test_wechat_refund_query(settings: Settings, standin: ProviderStandIn) -> None:
    provider = wechat_provider(settings)
    lookup = PaymentLookup(PAYMENT_ID, None, 1999, "CNY")
    refund = RefundLookup(REFUND_ID, None, lookup)
    assert await provider.query_refund(refund) is RemoteStatus.PENDING  # unknown yet
    await provider.refund(RefundRequest(REFUND_ID, lookup, 500, "test", "https://x/cb"))
    assert await provider.query_refund(refund) is RemoteStatus.PENDING
    standin.settle_refund(REFUND_ID.hex, "failed")
    assert await provider.query_refund(refund) is RemoteStatus.FAILED
    assert standin.refused == []


async def test_wechat_answer_signed_by_another_key_is_refused(
    settings: Settings, standin: ProviderStandIn, keys: RunKeys
) -> None:
    provider = wechat_provider(settings)
    standin.keys.wechat_platform, real = keys.stranger, keys.wechat_platform
    try:
        with pytest.raises(ProviderError, match="not authentic"):
            await provider.create_payment(request_for(1999, "CNY"))
    finally:
        standin.keys.wechat_platform = real


# Keys


@pytest.mark.parametrize("form", ["pem", "pkcs1", "file", "bare base64", "escaped newlines"])
def test_keys_load_from_every_accepted_form(keys: RunKeys, tmp_path: Path, form: str) -> None:
    pair = keys.stranger
    path = tmp_path / "key.pem"
    path.write_text(pair.private_pem)
    body = "".join(pair.private_pem.strip().splitlines()[1:-1])
    value = {
        "pem": pair.private_pem,
        "pkcs1": pair.private_pem_pkcs1,
        "file": f"@{path}",
        "bare base64": body,
        "escaped newlines": pair.private_pem.replace("\n", "\\n"),
    }[form]
    loaded = load_private_key(value)
    assert loaded.private_numbers() == pair.private_key.private_numbers()
    public_body = "".join(pair.public_pem.strip().splitlines()[1:-1])
    assert (
        load_public_key(public_body).public_numbers()
        == pair.private_key.public_key().public_numbers()
    )


def lower(headers: dict[str, str]) -> dict[str, str]:
    """Headers as a server hands them over (case-insensitive lookup by lower-case name)."""
    return {key.lower(): value for key, value in headers.items()}
