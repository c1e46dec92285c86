"""WeChat Pay API v3: Native pay (a ``code_url`` the buyer scans) and its signed notifies.

Every request carries ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid=…,nonce_str=…,
signature=…,timestamp=…,serial_no=…``, the signature being SHA256withRSA with the merchant key over
``"{method}\\n{path?query}\\n{timestamp}\\n{nonce}\\n{body}\\n"``. Answers and notifies are signed
by the platform key over ``"{Wechatpay-Timestamp}\\n{Wechatpay-Nonce}\\n{body}\\n"``
(``Wechatpay-Signature``, ``Wechatpay-Serial`` naming the key), within ±300 s of now. A notify's
``resource`` is AES-256-GCM encrypted with the API v3 key. Success is answered with 204.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import time
from collections.abc import Mapping
from typing import Any

import httpx
import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from agora.payments.providers import base
from agora.payments.providers.http import ProviderHttp, raise_for_answer
from agora.payments.providers.keys import rsa_sign, rsa_verifies

AUTHORIZATION_SCHEMA = "WECHATPAY2-SHA256-RSA2048"
_BEIJING = dt.timezone(dt.timedelta(hours=8))
_TRADE_STATES = {
    "SUCCESS": base.RemoteStatus.SUCCEEDED,
    "CLOSED": base.RemoteStatus.FAILED,
    "REVOKED": base.RemoteStatus.FAILED,
    "PAYERROR": base.RemoteStatus.FAILED,
}
_REFUND_STATUSES = {
    "SUCCESS": base.RemoteStatus.SUCCEEDED,
    "CLOSED": base.RemoteStatus.FAILED,
    "ABNORMAL": base.RemoteStatus.FAILED,
}
_REFUND_EVENTS = {
    "REFUND.SUCCESS": base.EventKind.REFUND_SUCCEEDED,
    "REFUND.ABNORMAL": base.EventKind.REFUND_FAILED,
    "REFUND.CLOSED": base.EventKind.REFUND_FAILED,
}


class WechatPayProvider(base.PaymentProvider):
    """WeChat Pay v3 for a direct merchant, verified with the platform public key."""

    name = "wechatpay"
    currencies = frozenset({"CNY"})

    def __init__(
        self,
        *,
        mchid: str,
        appid: str,
        apiv3_key: str,
        private_key: RSAPrivateKey,
        cert_serial: str,
        platform_public_key: RSAPublicKey,
        platform_serial: str,
        http: ProviderHttp,
    ) -> None:
        self.mchid = mchid
        self.appid = appid
        self.aes = AESGCM(apiv3_key.encode())
        self.private_key = private_key
        self.cert_serial = cert_serial
        self.platform_public_key = platform_public_key
        self.platform_serial = platform_serial
        self.http = http

    async def create_payment(self, request: base.PaymentRequest) -> base.CreatedPayment:
        """``POST /v3/pay/transactions/native``: the ``code_url`` to show as a QR code."""
        answer = await self._call(
            "POST",
            "/v3/pay/transactions/native",
            {
                "appid": self.appid,
                "mchid": self.mchid,
                "description": request.description[:127],
                "out_trade_no": request.reference,
                "notify_url": request.notify_url,
                "time_expire": request.expires_at.astimezone(_BEIJING).isoformat(
                    timespec="seconds"
                ),
                "amount": {"total": request.amount, "currency": request.currency},
            },
        )
        return base.CreatedPayment(code_url=str(answer["code_url"]))

    async def refund(self, request: base.RefundRequest) -> base.SubmittedRefund:
        """``POST /v3/refund/domestic/refunds``; ``out_refund_no`` (our refund id) is idempotent."""
        answer = await self._call(
            "POST",
            "/v3/refund/domestic/refunds",
            {
                "out_trade_no": request.payment.payment_id.hex,
                "out_refund_no": request.refund_id.hex,
                "reason": request.reason[:80],
                "notify_url": request.notify_url,
                "amount": {
                    "refund": request.amount,
                    "total": request.payment.amount,
                    "currency": request.payment.currency,
                },
            },
        )
        return base.SubmittedRefund(provider_reference=answer.get("refund_id"))

    async def query(self, payment: base.PaymentLookup) -> base.RemotePayment:
        """``GET /v3/pay/transactions/out-trade-no/{ref}``; an unknown trade is still pending."""
        path = f"/v3/pay/transactions/out-trade-no/{payment.payment_id.hex}?mchid={self.mchid}"
        response = await self._send("GET", path, b"")
        if response.status_code == 404:
            return base.RemotePayment(base.RemoteStatus.PENDING)
        answer = self._verified_answer(response, "query")
        amount = answer.get("amount") or {}
        return base.RemotePayment(
            _TRADE_STATES.get(str(answer.get("trade_state")), base.RemoteStatus.PENDING),
            amount=amount.get("total"),
            currency=amount.get("currency"),
            provider_reference=answer.get("transaction_id"),
        )

    async def close(self, payment: base.PaymentLookup) -> None:
        """``POST /v3/pay/transactions/out-trade-no/{ref}/close``, answered 204 when closed."""
        path = f"/v3/pay/transactions/out-trade-no/{payment.payment_id.hex}/close"
        response = await self._send("POST", path, orjson.dumps({"mchid": self.mchid}))
        raise_for_answer(response, "close")
        self._verify_answer(response, "close")

    async def query_refund(self, refund: base.RefundLookup) -> base.RemoteStatus:
        """``GET /v3/refund/domestic/refunds/{out_refund_no}``; an unknown one is still pending."""
        response = await self._send(
            "GET", f"/v3/refund/domestic/refunds/{refund.refund_id.hex}", b""
        )
        if response.status_code == 404:
            return base.RemoteStatus.PENDING
        answer = self._verified_answer(response, "refund query")
        return _REFUND_STATUSES.get(str(answer.get("status")), base.RemoteStatus.PENDING)

    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> base.CallbackEvent:
        """Verify the notify's signature, decrypt its resource and read it."""
        self._verify_signed(body, headers)
        try:
            notify = orjson.loads(body)
            event_id, event_type = str(notify["id"]), str(notify["event_type"])
            resource = self._decrypt(notify["resource"])
        except (orjson.JSONDecodeError, KeyError, TypeError) as error:
            raise base.CallbackRejected("not a WeChat Pay notify") from error
        if resource.get("mchid") != self.mchid:
            raise base.CallbackRejected("the notify is for another mchid")
        if event_type.startswith("TRANSACTION.") and resource.get("appid") != self.appid:
            raise base.CallbackRejected("the notify is for another appid")
        return _event(event_id, event_type, resource, notify)

    def acknowledgement(self) -> base.CallbackAnswer:
        """204 No Content: WeChat Pay stops resending."""
        return base.CallbackAnswer(204)

    def refusal(self, reason: str) -> base.CallbackAnswer:
        """A 4xx with WeChat Pay's error shape: it resends later."""
        body = orjson.dumps({"code": "FAIL", "message": reason})
        return base.CallbackAnswer(400, body, "application/json")

    def authorization(self, method: str, path: str, body: bytes) -> str:
        """The ``Authorization`` header of a request to the API."""
        timestamp, nonce = str(int(time.time())), secrets.token_hex(16).upper()
        message = f"{method}\n{path}\n{timestamp}\n{nonce}\n".encode() + body + b"\n"
        signature = rsa_sign(self.private_key, message)
        return (
            f'{AUTHORIZATION_SCHEMA} mchid="{self.mchid}",nonce_str="{nonce}",'
            f'signature="{signature}",timestamp="{timestamp}",'
            f'serial_no="{self.cert_serial}"'
        )

    def _verify_signed(self, body: bytes, headers: Mapping[str, str]) -> None:
        timestamp = headers.get("wechatpay-timestamp", "")
        nonce = headers.get("wechatpay-nonce", "")
        signature = headers.get("wechatpay-signature", "")
        if headers.get("wechatpay-serial") != self.platform_serial:
            raise base.CallbackRejected("signed with an unknown platform key serial")
        if not base.is_fresh(timestamp):
            raise base.CallbackRejected("Wechatpay-Timestamp missing or outside ±300 s")
        message = f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
        if not rsa_verifies(self.platform_public_key, message, signature):
            raise base.CallbackRejected("Wechatpay-Signature does not verify")

    def _decrypt(self, resource: dict[str, Any]) -> dict[str, Any]:
        if resource.get("algorithm") != "AEAD_AES_256_GCM":
            raise base.CallbackRejected("unsupported resource algorithm")
        try:
            plain = self.aes.decrypt(
                str(resource["nonce"]).encode(),
                base64.b64decode(resource["ciphertext"]),
                str(resource.get("associated_data", "")).encode(),
            )
            decrypted: dict[str, Any] = orjson.loads(plain)
        except (InvalidTag, ValueError, orjson.JSONDecodeError) as error:
            raise base.CallbackRejected("the resource does not decrypt") from error
        return decrypted

    async def _call(self, method: str, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        response = await self._send(method, path, orjson.dumps(payload))
        return self._verified_answer(response, path)

    async def _send(self, method: str, path: str, body: bytes) -> httpx.Response:
        headers = {
            "Authorization": self.authorization(method, path, body),
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": "agora",
        }
        return await self.http.send(method, path, headers=headers, content=body or None)

    def _verified_answer(self, response: httpx.Response, what: str) -> dict[str, Any]:
        raise_for_answer(response, what)
        self._verify_answer(response, what)
        answer: dict[str, Any] = response.json()
        return answer

    def _verify_answer(self, response: httpx.Response, what: str) -> None:
        try:
            self._verify_signed(response.content, response.headers)
        except base.CallbackRejected as error:
            raise base.ProviderError(
                f"WeChat Pay's answer to {what} is not authentic: {error}"
            ) from error


def _event(
    event_id: str, event_type: str, resource: dict[str, Any], notify: dict[str, Any]
) -> base.CallbackEvent:
    amount = resource.get("amount") or {}
    common: dict[str, Any] = {
        "event_id": event_id,
        "event_type": event_type,
        "payment_id": base.parse_reference(resource.get("out_trade_no")),
        "provider_reference": resource.get("transaction_id"),
        "currency": amount.get("currency", "CNY"),
        "payload": {**notify, "resource": resource},
    }
    if event_type in _REFUND_EVENTS:
        return base.CallbackEvent(
            kind=_REFUND_EVENTS[event_type],
            refund_id=base.parse_reference(resource.get("out_refund_no")),
            amount=amount.get("refund"),
            **common,
        )
    state = _TRADE_STATES.get(str(resource.get("trade_state")))
    kind = (
        base.EventKind.PAYMENT_SUCCEEDED
        if state is base.RemoteStatus.SUCCEEDED
        else base.EventKind.PAYMENT_FAILED
        if state is base.RemoteStatus.FAILED
        else base.EventKind.IGNORED
    )
    return base.CallbackEvent(kind=kind, amount=amount.get("total"), **common)
