"""Stripe: PaymentIntents through the REST API, webhooks signed with ``Stripe-Signature``.

The webhook header is ``t=<unix time>,v1=<hex>[,v1=<hex>…]``; each ``v1`` is an HMAC-SHA256 of
``"{t}.{raw body}"`` with an endpoint secret. During a secret rotation Stripe sends one ``v1`` per
active secret, and we may hold several secrets (comma separated): any match is accepted. A
timestamp more than 300 s away from now is refused, so a captured delivery cannot be replayed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import orjson

from agora.payments.providers import base
from agora.payments.providers.http import ProviderHttp, raise_for_answer

SIGNATURE_HEADER = "stripe-signature"
_REMOTE_STATUSES = {
    "succeeded": base.RemoteStatus.SUCCEEDED,
    "canceled": base.RemoteStatus.FAILED,
}
_REFUND_STATUSES = {
    "succeeded": base.RemoteStatus.SUCCEEDED,
    "failed": base.RemoteStatus.FAILED,
    "canceled": base.RemoteStatus.FAILED,
}


class StripeProvider(base.PaymentProvider):
    """Stripe PaymentIntents (card and wallet payments confirmed by Stripe.js on the client)."""

    name = "stripe"

    def __init__(self, api_key: str, webhook_secrets: list[str], http: ProviderHttp) -> None:
        self.api_key = api_key
        self.webhook_secrets = [secret.encode() for secret in webhook_secrets]
        self.http = http

    async def create_payment(self, request: base.PaymentRequest) -> base.CreatedPayment:
        """Create a PaymentIntent; the client confirms it with the returned client secret."""
        intent = await self._post(
            "/v1/payment_intents",
            {
                "amount": str(request.amount),
                "currency": request.currency.lower(),
                "description": request.description,
                "metadata[payment_id]": request.reference,
                "automatic_payment_methods[enabled]": "true",
            },
            idempotency_key=f"payment-{request.reference}",
        )
        return base.CreatedPayment(
            provider_reference=intent["id"], client_secret=intent["client_secret"]
        )

    async def refund(self, request: base.RefundRequest) -> base.SubmittedRefund:
        """Create a Refund of the payment's PaymentIntent."""
        if request.payment.provider_reference is None:
            raise base.ProviderError("the payment has no PaymentIntent to refund")
        refund = await self._post(
            "/v1/refunds",
            {
                "payment_intent": request.payment.provider_reference,
                "amount": str(request.amount),
                "metadata[refund_id]": request.refund_id.hex,
                "metadata[reason]": request.reason,
            },
            idempotency_key=f"refund-{request.refund_id.hex}",
        )
        return base.SubmittedRefund(provider_reference=refund["id"])

    async def query(self, payment: base.PaymentLookup) -> base.RemotePayment:
        """Retrieve the PaymentIntent."""
        if payment.provider_reference is None:
            return base.RemotePayment(base.RemoteStatus.PENDING)
        response = await self.http.send(
            "GET",
            f"/v1/payment_intents/{payment.provider_reference}",
            headers=self._headers(),
        )
        raise_for_answer(response, "retrieve PaymentIntent")
        intent = response.json()
        return base.RemotePayment(
            _REMOTE_STATUSES.get(intent.get("status"), base.RemoteStatus.PENDING),
            amount=intent.get("amount_received") or intent.get("amount"),
            currency=str(intent.get("currency", "")).upper() or None,
            provider_reference=intent.get("id"),
        )

    async def close(self, payment: base.PaymentLookup) -> None:
        """Cancel the PaymentIntent (Stripe has no expiry of its own: this is how an expired
        order's payment stops being payable). One already cancelled is fine."""
        if payment.provider_reference is None:
            return
        try:
            await self._post(
                f"/v1/payment_intents/{payment.provider_reference}/cancel",
                {"cancellation_reason": "abandoned"},
                idempotency_key=f"cancel-{payment.payment_id.hex}",
            )
        except base.ProviderError:
            if (await self.query(payment)).status is not base.RemoteStatus.FAILED:
                raise

    async def query_refund(self, refund: base.RefundLookup) -> base.RemoteStatus:
        """Retrieve the Refund."""
        if refund.provider_reference is None:
            return base.RemoteStatus.PENDING
        response = await self.http.send(
            "GET", f"/v1/refunds/{refund.provider_reference}", headers=self._headers()
        )
        raise_for_answer(response, "retrieve Refund")
        return _REFUND_STATUSES.get(response.json().get("status"), base.RemoteStatus.PENDING)

    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> base.CallbackEvent:
        """Verify ``Stripe-Signature`` and read the event."""
        self._verify_signature(body, headers.get(SIGNATURE_HEADER, ""))
        try:
            event = orjson.loads(body)
            event_id, event_type = str(event["id"]), str(event["type"])
            subject: dict[str, Any] = event["data"]["object"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as error:
            raise base.CallbackRejected("not a Stripe event") from error
        return _event(event_id, event_type, subject, event)

    def _verify_signature(self, body: bytes, header: str) -> None:
        timestamp: str | None = None
        signatures: list[str] = []
        for item in header.split(","):
            key, _, value = item.strip().partition("=")
            if key == "t":
                timestamp = value
            elif key == "v1":
                signatures.append(value)
        if timestamp is None or not timestamp.isdigit() or not signatures:
            raise base.CallbackRejected("malformed Stripe-Signature header")
        if not base.is_fresh(timestamp):
            raise base.CallbackRejected("Stripe-Signature timestamp outside the tolerance")
        signed = timestamp.encode() + b"." + body
        for secret in self.webhook_secrets:
            expected = hmac.new(secret, signed, hashlib.sha256).hexdigest()
            if any(hmac.compare_digest(expected, signature) for signature in signatures):
                return
        raise base.CallbackRejected("no Stripe-Signature v1 signature matches")

    async def _post(
        self, path: str, form: dict[str, str], *, idempotency_key: str
    ) -> dict[str, Any]:
        headers = {**self._headers(), "Idempotency-Key": idempotency_key}
        response = await self.http.send("POST", path, headers=headers, data=form)
        raise_for_answer(response, f"POST {path}")
        answer: dict[str, Any] = response.json()
        return answer

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def _event(
    event_id: str, event_type: str, subject: dict[str, Any], event: dict[str, Any]
) -> base.CallbackEvent:
    currency = str(subject.get("currency", "")).upper() or None
    if event_type in ("payment_intent.succeeded", "payment_intent.payment_failed"):
        return base.CallbackEvent(
            event_id=event_id,
            event_type=event_type,
            kind=base.EventKind.PAYMENT_SUCCEEDED
            if event_type == "payment_intent.succeeded"
            else base.EventKind.PAYMENT_FAILED,
            payment_id=base.parse_reference((subject.get("metadata") or {}).get("payment_id")),
            provider_reference=subject.get("id"),
            amount=subject.get("amount_received") or subject.get("amount"),
            currency=currency,
            payload=event,
        )
    if event_type == "charge.refunded":
        return base.CallbackEvent(
            event_id=event_id,
            event_type=event_type,
            kind=base.EventKind.REFUND_SUCCEEDED,
            provider_reference=subject.get("payment_intent"),
            refunded_total=subject.get("amount_refunded"),
            currency=currency,
            payload=event,
        )
    if event_type in ("charge.refund.updated", "refund.updated", "refund.failed"):
        status = subject.get("status")
        kind = {
            "succeeded": base.EventKind.REFUND_SUCCEEDED,
            "failed": base.EventKind.REFUND_FAILED,
        }
        return base.CallbackEvent(
            event_id=event_id,
            event_type=event_type,
            kind=kind.get(str(status), base.EventKind.IGNORED),
            provider_reference=subject.get("payment_intent"),
            refund_id=base.parse_reference((subject.get("metadata") or {}).get("refund_id")),
            amount=subject.get("amount"),
            currency=currency,
            payload=event,
        )
    return base.CallbackEvent(event_id, event_type, base.EventKind.IGNORED, payload=event)
