"""The dev provider: payments completed by a call to our own API, for demos and local work.

It has no webhook: ``POST /payments/dev/{id}/complete`` plays the provider's success callback
through the same path as real ones. Refunds settle at once. Refused in production by settings.
"""

from __future__ import annotations

from collections.abc import Mapping

from agora.payments.providers.base import (
    CallbackEvent,
    CallbackRejected,
    CreatedPayment,
    PaymentLookup,
    PaymentProvider,
    PaymentRequest,
    RefundLookup,
    RefundRequest,
    RemotePayment,
    RemoteStatus,
    SubmittedRefund,
)


class DevProvider(PaymentProvider):
    """A provider that never leaves the process."""

    name = "dev"

    async def create_payment(self, request: PaymentRequest) -> CreatedPayment:
        """Nothing to open: the payment waits for its completion call."""
        return CreatedPayment(provider_reference=f"dev_{request.reference}")

    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> CallbackEvent:
        """The dev provider has no webhook."""
        raise CallbackRejected("the dev provider sends no callbacks")

    async def refund(self, request: RefundRequest) -> SubmittedRefund:
        """Refunded on the spot."""
        return SubmittedRefund(provider_reference=f"dev_{request.refund_id.hex}", is_settled=True)

    async def query(self, payment: PaymentLookup) -> RemotePayment:
        """A dev payment is pending until its completion call."""
        return RemotePayment(RemoteStatus.PENDING)

    async def close(self, payment: PaymentLookup) -> None:
        """Nothing is open anywhere but here."""

    async def query_refund(self, refund: RefundLookup) -> RemoteStatus:
        """Dev refunds settle on submission."""
        return RemoteStatus.SUCCEEDED
