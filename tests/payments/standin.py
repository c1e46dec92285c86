"""A local stand-in for the providers' APIs (Stripe, Alipay gateway, WeChat Pay v3): a real HTTP
server that checks what we send the way the provider does, records it, and answers signed as
the provider would (Alipay's answers by python-alipay-sdk, WeChat Pay's by wechatpayv3)."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from wechatpayv3.utils import rsa_sign

from tests.payments import signing
from tests.payments.keys import RunKeys


@dataclass
class Recorded:
    """One request the stand-in received and accepted."""

    provider: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class ProviderStandIn:
    """State of the stand-in: what it received, and what it will answer."""

    keys: RunKeys
    base_url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    failures_to_inject: int = 0
    stripe_intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    trades: dict[str, dict[str, Any]] = field(default_factory=dict)  # by out_trade_no
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)  # by our refund id (hex)
    on_request: Callable[[], Awaitable[None]] | None = None  # runs before each answer
    _runner: web.AppRunner | None = None

    def reset(self) -> None:
        """Forget everything received (between tests)."""
        self.requests.clear()
        self.refused.clear()
        self.failures_to_inject = 0
        self.stripe_intents.clear()
        self.trades.clear()
        self.refunds.clear()
        self.on_request = None

    def settle_refund(self, refund_id: str, status: str) -> None:
        """Make a submitted refund ``succeeded`` or ``failed`` without sending its callback."""
        self.refunds[refund_id]["status"] = status

    def received(self, provider: str) -> list[Recorded]:
        """The accepted requests to one provider."""
        return [request for request in self.requests if request.provider == provider]

    async def start(self, port: int) -> None:
        """Serve on 127.0.0.1:``port``."""
        app = web.Application(middlewares=[self._inject_failures])
        app.router.add_post("/v1/payment_intents", self._stripe_create)
        app.router.add_get("/v1/payment_intents/{id}", self._stripe_intent)
        app.router.add_post("/v1/payment_intents/{id}/cancel", self._stripe_intent)
        app.router.add_post("/v1/refunds", self._stripe_refund)
        app.router.add_get("/v1/refunds/{id}", self._stripe_refund_retrieve)
        app.router.add_post("/gateway.do", self._alipay_gateway)
        app.router.add_route("*", "/v3/{tail:.*}", self._wechat)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _inject_failures(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.failures_to_inject > 0:
            self.failures_to_inject -= 1
            return web.json_response({"error": "try again"}, status=503)
        if self.on_request is not None:
            await self.on_request()
        response: web.StreamResponse = await handler(request)
        return response

    def _refuse(self, reason: str, status: int = 401) -> web.Response:
        self.refused.append(reason)
        return web.json_response({"error": reason}, status=status)

    async def _record(self, provider: str, request: web.Request) -> bytes:
        body = await request.read()
        self.requests.append(
            Recorded(provider, request.method, request.path_qs, dict(request.headers), body)
        )
        return body

    # Stripe: bearer secret key, form bodies, Idempotency-Key on every POST.

    def _stripe_authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {signing.STRIPE_API_KEY}"

    async def _stripe_create(self, request: web.Request) -> web.Response:
        if not self._stripe_authorised(request):
            return self._refuse("stripe: bad api key")
        if not request.headers.get("Idempotency-Key"):
            return self._refuse("stripe: no Idempotency-Key", 400)
        form = dict(parse_qsl((await self._record("stripe", request)).decode()))
        intent_id = f"pi_{form['metadata[payment_id]'][:24]}"
        intent = self.stripe_intents.setdefault(
            intent_id,
            {
                "id": intent_id,
                "object": "payment_intent",
                "amount": int(form["amount"]),
                "amount_received": 0,
                "currency": form["currency"],
                "metadata": {"payment_id": form["metadata[payment_id]"]},
                "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
                "status": "requires_payment_method",
            },
        )
        return web.json_response(intent)

    async def _stripe_intent(self, request: web.Request) -> web.Response:
        """Retrieve (GET) or cancel (POST …/cancel) a PaymentIntent."""
        if not self._stripe_authorised(request):
            return self._refuse("stripe: bad api key")
        await self._record("stripe", request)
        intent = self.stripe_intents.get(request.match_info["id"])
        if intent is None:
            return web.json_response({"error": {"code": "resource_missing"}}, status=404)
        if request.method == "POST":
            if intent["status"] in ("succeeded", "canceled"):
                error = {"code": "payment_intent_unexpected_state", "payment_intent": intent}
                return web.json_response({"error": error}, status=400)
            intent["status"] = "canceled"
        return web.json_response(intent)

    async def _stripe_refund(self, request: web.Request) -> web.Response:
        if not self._stripe_authorised(request):
            return self._refuse("stripe: bad api key")
        form = dict(parse_qsl((await self._record("stripe", request)).decode()))
        refund = self._new_refund(form["metadata[refund_id]"], int(form["amount"]))
        return web.json_response(self._stripe_refund_object(refund, form["payment_intent"]))

    async def _stripe_refund_retrieve(self, request: web.Request) -> web.Response:
        if not self._stripe_authorised(request):
            return self._refuse("stripe: bad api key")
        await self._record("stripe", request)
        refund_id = request.match_info["id"].removeprefix("re_")
        refund = next((r for key, r in self.refunds.items() if key[:24] == refund_id), None)
        if refund is None:
            return web.json_response({"error": {"code": "resource_missing"}}, status=404)
        return web.json_response(self._stripe_refund_object(refund, "pi"))

    @staticmethod
    def _stripe_refund_object(refund: dict[str, Any], intent_id: str) -> dict[str, Any]:
        return {
            "id": f"re_{refund['id'][:24]}",
            "object": "refund",
            "amount": refund["amount"],
            "payment_intent": intent_id,
            "status": refund["status"],
        }

    def _new_refund(self, refund_id: str, amount: int) -> dict[str, Any]:
        """A refund accepted for processing (idempotent on our refund id)."""
        return self.refunds.setdefault(
            refund_id, {"id": refund_id, "amount": amount, "status": "pending"}
        )

    # Alipay: RSA2 over the sorted parameters (all but ``sign``), checked with our app key.

    async def _alipay_gateway(self, request: web.Request) -> web.Response:
        params = dict(parse_qsl((await request.read()).decode()))
        signature = params.pop("sign", "")
        content = "&".join(f"{key}={value}" for key, value in sorted(params.items()))
        verifier = signing.alipay_sdk(self.keys.alipay_platform, self.keys.alipay_app)
        if params.get("app_id") != signing.ALIPAY_APP_ID or not verifier._verify(
            content, signature
        ):
            return self._refuse("alipay: bad signature", 200)
        self.requests.append(
            Recorded(
                "alipay",
                "POST",
                params["method"],
                dict(request.headers),
                params["biz_content"].encode(),
            )
        )
        answer = self._alipay_answer(params["method"], json.loads(params["biz_content"]))
        key = params["method"].replace(".", "_") + "_response"
        raw = json.dumps(answer, ensure_ascii=False, separators=(",", ":"))
        sign = verifier._sign(raw)
        return web.Response(
            text=f'{{"{key}":{raw},"sign":"{sign}"}}', content_type="application/json"
        )

    def _alipay_answer(self, method: str, biz: dict[str, Any]) -> dict[str, Any]:
        success = {"code": "10000", "msg": "Success"}
        no_trade = {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST"}
        trade = self.trades.get(biz.get("out_trade_no", ""))
        if method == "alipay.trade.query":
            return {**success, **trade} if trade else no_trade
        if method == "alipay.trade.close":
            if trade is None:
                return no_trade
            if trade.get("trade_status") != "WAIT_BUYER_PAY":
                return {"code": "40004", "sub_code": "ACQ.TRADE_STATUS_ERROR"}
            trade["trade_status"] = "TRADE_CLOSED"
            return {**success, "out_trade_no": biz["out_trade_no"]}
        if method == "alipay.trade.fastpay.refund.query":
            refund = self.refunds.get(biz["out_request_no"])
            if refund is None or refund["status"] != "succeeded":
                return {**success, "out_request_no": biz["out_request_no"]}
            amount = f"{refund['amount'] // 100}.{refund['amount'] % 100:02d}"
            return {**success, "refund_amount": amount, "refund_status": "REFUND_SUCCESS"}
        self._new_refund(biz["out_request_no"], round(float(biz["refund_amount"]) * 100))
        return {
            **success,
            "trade_no": f"2026{biz['out_trade_no'][:20]}",
            "out_trade_no": biz["out_trade_no"],
            "refund_fee": biz["refund_amount"],
            "fund_change": "Y",
        }

    # WeChat Pay: the Authorization signature checked with our merchant public key; answers
    # signed with the platform key.

    async def _wechat(self, request: web.Request) -> web.Response:
        body = await request.read()
        reason = self._wechat_authorisation_problem(request, body)
        if reason:
            return self._refuse(reason)
        self.requests.append(
            Recorded("wechatpay", request.method, request.path_qs, dict(request.headers), body)
        )
        if request.path == "/v3/pay/transactions/native":
            order = json.loads(body)
            return self._wechat_answer(
                {"code_url": f"weixin://wxpay/bizpayurl?pr={order['out_trade_no'][:8]}"}
            )
        if request.path.startswith("/v3/pay/transactions/out-trade-no/"):
            return self._wechat_trade(request.method, request.path)
        if request.path == "/v3/refund/domestic/refunds":
            refund = json.loads(body)
            self._new_refund(refund["out_refund_no"], refund["amount"]["refund"])
            return self._wechat_answer(
                {"refund_id": f"5030{refund['out_refund_no'][:20]}", "status": "PROCESSING"}
            )
        if request.path.startswith("/v3/refund/domestic/refunds/"):
            known = self.refunds.get(request.path.rsplit("/", 1)[1])
            if known is None:
                return self._wechat_answer({"code": "RESOURCE_NOT_EXISTS"}, status=404)
            status = {"succeeded": "SUCCESS", "failed": "ABNORMAL"}.get(known["status"])
            return self._wechat_answer({"status": status or "PROCESSING"})
        return self._wechat_answer({"code": "NOT_FOUND"}, status=404)

    def _wechat_trade(self, method: str, path: str) -> web.Response:
        """Query (GET …/{out_trade_no}) or close (POST …/{out_trade_no}/close) a trade."""
        out_trade_no = path.removesuffix("/close").rsplit("/", 1)[1]
        trade = self.trades.get(out_trade_no)
        if method == "GET":
            if trade is None:
                return self._wechat_answer({"code": "ORDER_NOT_EXIST"}, status=404)
            return self._wechat_answer(trade)
        if trade is not None and trade.get("trade_state") == "SUCCESS":
            return self._wechat_answer({"code": "ORDERPAID"}, status=400)
        self.trades[out_trade_no] = {**(trade or {}), "trade_state": "CLOSED"}
        return self._wechat_answer(None, status=204)

    def _wechat_authorisation_problem(self, request: web.Request, body: bytes) -> str | None:
        header = request.headers.get("Authorization", "")
        schema, _, rest = header.partition(" ")
        fields = (
            {part.split("=", 1)[0]: part.split("=", 1)[1].strip('"') for part in rest.split(",")}
            if rest
            else {}
        )
        if schema != "WECHATPAY2-SHA256-RSA2048" or fields.get("mchid") != signing.WECHAT_MCHID:
            return "wechatpay: bad Authorization schema or mchid"
        if fields.get("serial_no") != signing.WECHAT_CERT_SERIAL:
            return "wechatpay: unknown merchant certificate serial"
        if abs(time.time() - int(fields.get("timestamp", "0"))) > 300:
            return "wechatpay: stale timestamp"
        message = (
            (
                f"{request.method}\n{request.path_qs}\n{fields['timestamp']}\n{fields['nonce_str']}\n"
            ).encode()
            + body
            + b"\n"
        )
        try:
            self.keys.wechat_merchant.private_key.public_key().verify(
                base64.b64decode(fields["signature"]), message, padding.PKCS1v15(), hashes.SHA256()
            )
        except (InvalidSignature, KeyError, ValueError):
            return "wechatpay: bad signature"
        return None

    def _wechat_answer(self, answer: dict[str, Any] | None, status: int = 200) -> web.Response:
        body = "" if answer is None else json.dumps(answer)
        stamp, nonce = str(int(time.time())), secrets.token_hex(16)
        signature = rsa_sign(self.keys.wechat_platform.private_key, f"{stamp}\n{nonce}\n{body}\n")
        headers = {
            "Wechatpay-Timestamp": stamp,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": signature,
            "Wechatpay-Serial": signing.WECHAT_PLATFORM_SERIAL,
        }
        if answer is None:
            return web.Response(status=status, headers=headers)
        return web.Response(
            text=body, status=status, headers=headers, content_type="application/json"
        )
