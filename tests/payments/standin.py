"""A local stand-in for the providers' APIs (Stripe, Alipay gateway, WeChat Pay v3): a real HTTP
server that checks what we send the way the provider does, records it, and answers signed as
the provider would (Alipay's answers by python-alipay-sdk, WeChat Pay's by wechatpayv3)."""

from __future__ import annotations

import base64
import json
import secrets
import time
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
    _runner: web.AppRunner | None = None

    def reset(self) -> None:
        """Forget everything received (between tests)."""
        self.requests.clear()
        self.refused.clear()
        self.failures_to_inject = 0
        self.stripe_intents.clear()
        self.trades.clear()

    def received(self, provider: str) -> list[Recorded]:
        """The accepted requests to one provider."""
        return [request for request in self.requests if request.provider == provider]

    async def start(self, port: int) -> None:
        """Serve on 127.0.0.1:``port``."""
        app = web.Application(middlewares=[self._inject_failures])
        app.router.add_post("/v1/payment_intents", self._stripe_create)
        app.router.add_get("/v1/payment_intents/{id}", self._stripe_retrieve)
        app.router.add_post("/v1/refunds", self._stripe_refund)
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

    async def _stripe_retrieve(self, request: web.Request) -> web.Response:
        if not self._stripe_authorised(request):
            return self._refuse("stripe: bad api key")
        await self._record("stripe", request)
        intent = self.stripe_intents.get(request.match_info["id"])
        if intent is None:
            return web.json_response({"error": {"code": "resource_missing"}}, status=404)
        return web.json_response(intent)

    async def _stripe_refund(self, request: web.Request) -> web.Response:
        if not self._stripe_authorised(request):
            return self._refuse("stripe: bad api key")
        form = dict(parse_qsl((await self._record("stripe", request)).decode()))
        return web.json_response(
            {
                "id": f"re_{form['metadata[refund_id]'][:24]}",
                "object": "refund",
                "amount": int(form["amount"]),
                "payment_intent": form["payment_intent"],
                "status": "pending",
            }
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
            Recorded("alipay", "POST", params["method"], dict(request.headers), b"")
        )
        biz = json.loads(params["biz_content"])
        if params["method"] == "alipay.trade.query":
            trade = self.trades.get(biz["out_trade_no"])
            answer: dict[str, Any] = (
                {"code": "10000", "msg": "Success", **trade}
                if trade
                else {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST"}
            )
        else:
            answer = {
                "code": "10000",
                "msg": "Success",
                "trade_no": f"2026{biz['out_trade_no'][:20]}",
                "out_trade_no": biz["out_trade_no"],
                "refund_fee": biz["refund_amount"],
                "fund_change": "Y",
            }
        key = params["method"].replace(".", "_") + "_response"
        raw = json.dumps(answer, ensure_ascii=False, separators=(",", ":"))
        sign = verifier._sign(raw)
        return web.Response(
            text=f'{{"{key}":{raw},"sign":"{sign}"}}', content_type="application/json"
        )

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
            trade = self.trades.get(request.path.rsplit("/", 1)[1])
            if trade is None:
                return self._wechat_answer({"code": "ORDER_NOT_EXIST"}, status=404)
            return self._wechat_answer(trade)
        if request.path == "/v3/refund/domestic/refunds":
            refund = json.loads(body)
            return self._wechat_answer(
                {"refund_id": f"5030{refund['out_refund_no'][:20]}", "status": "PROCESSING"}
            )
        return self._wechat_answer({"code": "NOT_FOUND"}, status=404)

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

    def _wechat_answer(self, answer: dict[str, Any], status: int = 200) -> web.Response:
        body = json.dumps(answer)
        stamp, nonce = str(int(time.time())), secrets.token_hex(16)
        signature = rsa_sign(self.keys.wechat_platform.private_key, f"{stamp}\n{nonce}\n{body}\n")
        headers = {
            "Wechatpay-Timestamp": stamp,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": signature,
            "Wechatpay-Serial": signing.WECHAT_PLATFORM_SERIAL,
        }
        return web.Response(
            text=body, status=status, headers=headers, content_type="application/json"
        )
