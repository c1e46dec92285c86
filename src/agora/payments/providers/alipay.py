"""Alipay: computer-website payment (``alipay.trade.page.pay``) and its RSA2 async notify.

Requests are signed locally: the parameters (without ``sign``), sorted by name and joined as
``k=v&…``, are signed SHA256withRSA with the app's private key. An async notify is verified the
same way with Alipay's public key, over every parameter except ``sign`` and ``sign_type`` (empty
values left out, as Alipay's own SDKs do); then ``app_id`` must be ours. Amounts are yuan strings
(``"12.34"``): only CNY is accepted. The answer Alipay waits for is exactly ``success``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from agora.payments.providers import base
from agora.payments.providers.http import ProviderHttp, raise_for_answer
from agora.payments.providers.keys import rsa_sign, rsa_verifies

SUCCESS_ANSWER = b"success"
_BEIJING = dt.timezone(dt.timedelta(hours=8))
_PAID = frozenset({"TRADE_SUCCESS", "TRADE_FINISHED"})
_SUCCESS_CODE = "10000"
_NO_TRADE = "ACQ.TRADE_NOT_EXIST"


class AlipayProvider(base.PaymentProvider):
    """Alipay open platform, RSA2 keys (not certificate mode)."""

    name = "alipay"
    currencies = frozenset({"CNY"})

    def __init__(
        self,
        app_id: str,
        app_private_key: RSAPrivateKey,
        alipay_public_key: RSAPublicKey,
        http: ProviderHttp,
        return_url: str | None = None,
    ) -> None:
        self.app_id = app_id
        self.app_private_key = app_private_key
        self.alipay_public_key = alipay_public_key
        self.http = http
        self.return_url = return_url

    async def create_payment(self, request: base.PaymentRequest) -> base.CreatedPayment:
        """The signed page-pay URL the buyer is redirected to (no call to Alipay needed)."""
        params = self._request_params(
            "alipay.trade.page.pay",
            {
                "out_trade_no": request.reference,
                "total_amount": yuan(request.amount),
                "subject": request.description[:256],
                "product_code": "FAST_INSTANT_TRADE_PAY",
                "time_expire": beijing_time(request.expires_at),
            },
            notify_url=request.notify_url,
            return_url=self.return_url,
        )
        return base.CreatedPayment(redirect_url=f"{self.http.base_url}?{urlencode(params)}")

    async def refund(self, request: base.RefundRequest) -> base.SubmittedRefund:
        """``alipay.trade.refund``; ``out_request_no`` (our refund id) makes it idempotent."""
        answer = await self._call(
            "alipay.trade.refund",
            {
                "out_trade_no": request.payment.payment_id.hex,
                "refund_amount": yuan(request.amount),
                "out_request_no": request.refund_id.hex,
                "refund_reason": request.reason[:256],
            },
        )
        if answer.get("code") != _SUCCESS_CODE:
            raise base.ProviderError(
                f"Alipay refused the refund: {answer.get('sub_code')} {answer.get('sub_msg')}",
                is_retryable=answer.get("code") == "20000",
            )
        return base.SubmittedRefund(provider_reference=answer.get("trade_no"))

    async def query(self, payment: base.PaymentLookup) -> base.RemotePayment:
        """``alipay.trade.query`` by our reference; a trade not yet created is still pending."""
        answer = await self._call("alipay.trade.query", {"out_trade_no": payment.payment_id.hex})
        if answer.get("code") != _SUCCESS_CODE:
            if answer.get("sub_code") == _NO_TRADE:
                return base.RemotePayment(base.RemoteStatus.PENDING)
            raise base.ProviderError(f"Alipay query failed: {answer.get('sub_code')}")
        status = str(answer.get("trade_status"))
        remote = (
            base.RemoteStatus.SUCCEEDED
            if status in _PAID
            else base.RemoteStatus.FAILED
            if status == "TRADE_CLOSED"
            else base.RemoteStatus.PENDING
        )
        return base.RemotePayment(
            remote,
            amount=minor_units(str(answer.get("total_amount", ""))),
            currency="CNY",
            provider_reference=answer.get("trade_no"),
        )

    async def close(self, payment: base.PaymentLookup) -> None:
        """``alipay.trade.close``; a trade the buyer never opened has nothing to close (its page
        URL stops working at ``time_expire``)."""
        answer = await self._call("alipay.trade.close", {"out_trade_no": payment.payment_id.hex})
        if answer.get("code") != _SUCCESS_CODE and answer.get("sub_code") != _NO_TRADE:
            raise base.ProviderError(
                f"Alipay refused to close the trade: {answer.get('sub_code')}",
                is_retryable=answer.get("code") == "20000",
            )

    async def query_refund(self, refund: base.RefundLookup) -> base.RemoteStatus:
        """``alipay.trade.fastpay.refund.query``: an answer naming the refunded amount (with no
        status, or ``REFUND_SUCCESS``) means refunded; Alipay has no "refund failed" state."""
        answer = await self._call(
            "alipay.trade.fastpay.refund.query",
            {
                "out_trade_no": refund.payment.payment_id.hex,
                "out_request_no": refund.refund_id.hex,
            },
        )
        if answer.get("code") != _SUCCESS_CODE:
            raise base.ProviderError(f"Alipay refund query failed: {answer.get('sub_code')}")
        status = answer.get("refund_status")
        if answer.get("refund_amount") and status in (None, "REFUND_SUCCESS"):
            return base.RemoteStatus.SUCCEEDED
        return base.RemoteStatus.PENDING

    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> base.CallbackEvent:
        """Verify an async notify (form-encoded) and read it."""
        try:
            params = dict(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError) as error:
            raise base.CallbackRejected("not a form-encoded notify") from error
        signature = params.pop("sign", "")
        if params.pop("sign_type", "RSA2") != "RSA2":
            raise base.CallbackRejected("only RSA2 notifies are accepted")
        if not self._is_signed_by_alipay(signable(params), signature):
            raise base.CallbackRejected("the notify's signature does not verify")
        if params.get("app_id") != self.app_id:
            raise base.CallbackRejected("the notify is for another app_id")
        if not params.get("notify_id") or not params.get("out_trade_no"):
            raise base.CallbackRejected("the notify has no notify_id or out_trade_no")
        return _event(params)

    def acknowledgement(self) -> base.CallbackAnswer:
        """Exactly ``success``: anything else makes Alipay resend."""
        return base.CallbackAnswer(200, SUCCESS_ANSWER, "text/plain")

    def refusal(self, reason: str) -> base.CallbackAnswer:
        """``fail``: Alipay resends later (up to 8 times over 25 hours)."""
        return base.CallbackAnswer(400, b"fail", "text/plain")

    def sign(self, content: str) -> str:
        """SHA256withRSA of ``content`` with the app's private key, base64."""
        return rsa_sign(self.app_private_key, content.encode())

    def _is_signed_by_alipay(self, content: str, signature: str) -> bool:
        return rsa_verifies(self.alipay_public_key, content.encode(), signature)

    def _request_params(
        self, method: str, biz_content: dict[str, str], **extra: str | None
    ) -> dict[str, str]:
        params = {
            "app_id": self.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": beijing_time(dt.datetime.now(dt.UTC)),
            "version": "1.0",
            "biz_content": orjson.dumps(biz_content).decode(),
            **{key: value for key, value in extra.items() if value},
        }
        params["sign"] = self.sign(signable(params))
        return params

    async def _call(self, method: str, biz_content: dict[str, str]) -> dict[str, Any]:
        params = self._request_params(method, biz_content)
        response = await self.http.send(
            "POST",
            "",
            content=urlencode(params).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"},
        )
        raise_for_answer(response, method)
        return self._verified_answer(response.text, method.replace(".", "_") + "_response")

    def _verified_answer(self, text: str, key: str) -> dict[str, Any]:
        """The ``…_response`` object of a gateway answer, after checking Alipay's signature on
        its exact JSON text."""
        try:
            answer = orjson.loads(text)
            signature = str(answer["sign"])
            content = _raw_member(text, key)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise base.ProviderError(f"unreadable Alipay answer to {key}") from error
        if not self._is_signed_by_alipay(content, signature):
            raise base.ProviderError(f"the signature of Alipay's {key} does not verify")
        result: dict[str, Any] = answer[key]
        return result


def signable(params: Mapping[str, str], excluded: frozenset[str] = frozenset({"sign"})) -> str:
    """The string Alipay signs: the non-empty parameters not ``excluded``, sorted, ``k=v&…``.

    A request signs everything but ``sign``; a notify is verified without ``sign_type`` too.
    """
    return "&".join(
        f"{key}={value}"
        for key, value in sorted(params.items())
        if value != "" and key not in excluded
    )


def beijing_time(moment: dt.datetime) -> str:
    """A moment as Alipay writes times: ``yyyy-MM-dd HH:mm:ss`` in Beijing time."""
    return moment.astimezone(_BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def yuan(amount: int) -> str:
    """Minor units (fen) as Alipay's yuan string: 1234 → ``"12.34"``."""
    return f"{amount // 100}.{amount % 100:02d}"


def minor_units(value: str) -> int | None:
    """A yuan string as fen, or None if it is not an amount with at most two decimals."""
    try:
        amount = Decimal(value) * 100
    except InvalidOperation:
        return None
    if amount != amount.to_integral_value() or amount < 0:
        return None
    return int(amount)


def _raw_member(text: str, key: str) -> str:
    """The exact JSON text of member ``key`` of the top-level object (what Alipay signed)."""
    start = text.index(f'"{key}"')
    start = text.index("{", start)
    depth, in_string, escaped = 0, False, False
    for position in range(start, len(text)):
        char = text[position]
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start : position + 1]
    raise ValueError("unterminated response object")


def _event(params: dict[str, str]) -> base.CallbackEvent:
    status = params.get("trade_status", "")
    common: dict[str, Any] = {
        "event_id": params["notify_id"],
        "event_type": f"{params.get('notify_type', 'trade_status_sync')}:{status}",
        "payment_id": base.parse_reference(params["out_trade_no"]),
        "provider_reference": params.get("trade_no"),
        "currency": "CNY",
        "payload": params,
    }
    if params.get("out_biz_no") and params.get("refund_fee"):
        return base.CallbackEvent(
            kind=base.EventKind.REFUND_SUCCEEDED,
            refund_id=base.parse_reference(params["out_biz_no"]),
            refunded_total=minor_units(params["refund_fee"]),
            **common,
        )
    if status in _PAID:
        amount = minor_units(params.get("total_amount", ""))
        return base.CallbackEvent(kind=base.EventKind.PAYMENT_SUCCEEDED, amount=amount, **common)
    if status == "TRADE_CLOSED":
        return base.CallbackEvent(kind=base.EventKind.PAYMENT_FAILED, **common)
    return base.CallbackEvent(kind=base.EventKind.IGNORED, **common)
