"""Callbacks signed the way each provider signs them, with the provider's own SDK:
``stripe.WebhookSignature``, python-alipay-sdk's ``AliPay`` (standing on Alipay's side, with
Alipay's private key), and ``wechatpayv3.utils`` (platform-side RSA signature; the resource is
encrypted per WeChat Pay's published AES-256-GCM scheme, which the SDK only decrypts)."""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl

import stripe
from alipay import AliPay
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from wechatpayv3.utils import rsa_sign

from tests.payments.keys import KeyPair

STRIPE_SECRET = "whsec_test_agora"
STRIPE_API_KEY = "sk_test_agora"
ALIPAY_APP_ID = "2021000000000001"
WECHAT_MCHID = "1900000001"
WECHAT_APPID = "wx0000000000000001"
WECHAT_APIV3_KEY = "0123456789abcdef0123456789abcdef"
WECHAT_CERT_SERIAL = "MERCHANT0001"
WECHAT_PLATFORM_SERIAL = "PLATFORM0001"


def stripe_event(event_type: str, subject: dict[str, Any], *, event_id: str | None = None) -> bytes:
    """A Stripe event body."""
    event = {
        "id": event_id or f"evt_{secrets.token_hex(12)}",
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "data": {"object": subject},
    }
    return json.dumps(event).encode()


def stripe_intent(payment_id: uuid.UUID, amount: int, currency: str = "eur") -> dict[str, Any]:
    """A PaymentIntent as Stripe sends it in an event."""
    return {
        "id": f"pi_{payment_id.hex[:24]}",
        "object": "payment_intent",
        "amount": amount,
        "amount_received": amount,
        "currency": currency,
        "metadata": {"payment_id": payment_id.hex},
        "status": "succeeded",
    }


def stripe_headers(
    body: bytes, secret: str = STRIPE_SECRET, timestamp: int | None = None
) -> dict[str, str]:
    """``Stripe-Signature`` computed by the stripe SDK's test helper."""
    header = stripe.WebhookSignature.generate_signature_header(
        body.decode(), secret, timestamp=timestamp
    )
    return {"Stripe-Signature": header, "Content-Type": "application/json"}


def alipay_sdk(app_private: KeyPair, alipay_public: KeyPair, app_id: str = ALIPAY_APP_ID) -> AliPay:
    """python-alipay-sdk with a private key (whose side it stands on) and a public key to verify."""
    return AliPay(
        appid=app_id,
        app_private_key_string=app_private.private_pem_pkcs1,
        alipay_public_key_string=alipay_public.public_pem,
        sign_type="RSA2",
    )


def alipay_notify(
    signer: AliPay,
    payment_id: uuid.UUID,
    total_amount: str,
    *,
    app_id: str = ALIPAY_APP_ID,
    trade_status: str = "TRADE_SUCCESS",
    notify_id: str | None = None,
    **extra: str,
) -> bytes:
    """An async notify form body, signed by the SDK as Alipay signs it (``sign_type`` is added
    after signing, as Alipay does)."""
    params = {
        "notify_time": time.strftime("%Y-%m-%d %H:%M:%S"),
        "notify_type": "trade_status_sync",
        "notify_id": notify_id or secrets.token_hex(16),
        "app_id": app_id,
        "charset": "utf-8",
        "version": "1.0",
        "trade_no": f"2026{payment_id.hex[:20]}",
        "out_trade_no": payment_id.hex,
        "trade_status": trade_status,
        "total_amount": total_amount,
        "buyer_id": "2088102122524333",
        **extra,
    }
    signed = signer.sign_data(params)  # k=quote_plus(v)&…&sign=…
    return (signed + "&sign_type=RSA2").encode()


def tamper_form(body: bytes, key: str, value: str) -> bytes:
    """A signed form body with one field changed after signing."""
    from urllib.parse import urlencode

    params = dict(parse_qsl(body.decode()))
    params[key] = value
    return urlencode(params).encode()


def wechat_notify(
    payment_id: uuid.UUID,
    total: int,
    *,
    event_type: str = "TRANSACTION.SUCCESS",
    resource: dict[str, Any] | None = None,
    notify_id: str | None = None,
    apiv3_key: str = WECHAT_APIV3_KEY,
) -> bytes:
    """A notify body with its resource AES-256-GCM encrypted with the API v3 key."""
    plain = resource or {
        "mchid": WECHAT_MCHID,
        "appid": WECHAT_APPID,
        "out_trade_no": payment_id.hex,
        "transaction_id": f"4200{payment_id.hex[:24]}",
        "trade_type": "NATIVE",
        "trade_state": "SUCCESS",
        "amount": {"total": total, "payer_total": total, "currency": "CNY"},
    }
    nonce, associated = secrets.token_hex(6), "transaction"
    ciphertext = AESGCM(apiv3_key.encode()).encrypt(
        nonce.encode(), json.dumps(plain).encode(), associated.encode()
    )
    notify = {
        "id": notify_id or str(uuid.uuid4()),
        "create_time": time.strftime("%Y-%m-%dT%H:%M:%S+08:00"),
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": "支付成功",
        "resource": {
            "original_type": associated,
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": base64.b64encode(ciphertext).decode(),
            "associated_data": associated,
            "nonce": nonce,
        },
    }
    return json.dumps(notify, ensure_ascii=False).encode()


def wechat_headers(
    body: bytes,
    platform: KeyPair,
    *,
    timestamp: int | None = None,
    serial: str = WECHAT_PLATFORM_SERIAL,
) -> dict[str, str]:
    """``Wechatpay-*`` headers signed by ``wechatpayv3.utils.rsa_sign`` with the platform key."""
    stamp, nonce = str(timestamp or int(time.time())), secrets.token_hex(16)
    message = f"{stamp}\n{nonce}\n{body.decode()}\n"
    return {
        "Wechatpay-Timestamp": stamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": rsa_sign(platform.private_key, message),
        "Wechatpay-Serial": serial,
        "Content-Type": "application/json",
    }
