"""The one interface every payment provider implements, and the values that cross it.

A provider knows how to talk to its payment service: create a payment, verify and parse a
callback from its raw body and headers, ask for a refund and query a payment's status. It knows
nothing of our tables: the service turns what it returns into state changes.
Our payment id (hex) is the merchant reference sent to every provider (``out_trade_no``,
metadata, idempotency key), so a callback always names the payment it is about.
"""

from __future__ import annotations

import abc
import datetime as dt
import enum
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CALLBACK_TOLERANCE_S = 300


class CallbackRejected(Exception):
    """A callback failed verification (signature, timestamp, merchant ids, shape): ignore it."""


class ProviderError(Exception):
    """The provider refused a request or could not be reached after the allowed retries."""

    def __init__(self, message: str, *, is_retryable: bool = False) -> None:
        super().__init__(message)
        self.is_retryable = is_retryable


class EventKind(enum.StrEnum):
    """What a verified callback says happened."""

    PAYMENT_SUCCEEDED = "payment_succeeded"
    PAYMENT_FAILED = "payment_failed"
    REFUND_SUCCEEDED = "refund_succeeded"
    REFUND_FAILED = "refund_failed"
    IGNORED = "ignored"


class RemoteStatus(enum.StrEnum):
    """A payment's state at the provider, as a reconciliation query reports it."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class PaymentRequest:
    """What to charge: our payment id, the order's frozen total, where to send callbacks, and
    when the payment must stop being payable (the order's payment deadline)."""

    payment_id: uuid.UUID
    amount: int
    currency: str
    description: str
    notify_url: str
    expires_at: dt.datetime

    @property
    def reference(self) -> str:
        """The merchant reference sent to the provider."""
        return self.payment_id.hex


@dataclass(frozen=True)
class CreatedPayment:
    """What the client needs to pay, and the provider's id of the payment when it has one."""

    provider_reference: str | None = None
    client_secret: str | None = None
    redirect_url: str | None = None
    code_url: str | None = None


@dataclass(frozen=True)
class PaymentLookup:
    """How to find a payment at its provider."""

    payment_id: uuid.UUID
    provider_reference: str | None
    amount: int
    currency: str


@dataclass(frozen=True)
class RefundRequest:
    """A refund of ``amount`` of a captured payment; ``refund_id`` makes the request idempotent."""

    refund_id: uuid.UUID
    payment: PaymentLookup
    amount: int
    reason: str
    notify_url: str


@dataclass(frozen=True)
class RefundLookup:
    """How to find a submitted refund at its provider: our id, the provider's, and its payment."""

    refund_id: uuid.UUID
    provider_reference: str | None
    payment: PaymentLookup


@dataclass(frozen=True)
class SubmittedRefund:
    """The provider accepted a refund; its callback settles it unless it is ``is_settled``."""

    provider_reference: str | None
    is_settled: bool = False


@dataclass(frozen=True)
class RemotePayment:
    """A payment's state at the provider (reconciliation)."""

    status: RemoteStatus
    amount: int | None = None
    currency: str | None = None
    provider_reference: str | None = None


@dataclass(frozen=True)
class CallbackEvent:
    """A verified callback: what happened, to which payment (or refund), for how much.

    ``payment_id`` is our reference when the callback carries it; ``provider_reference`` is the
    provider's id of the payment. ``amount`` is in minor units; for a refund it is the refund's.
    """

    event_id: str
    event_type: str
    kind: EventKind
    payment_id: uuid.UUID | None = None
    provider_reference: str | None = None
    amount: int | None = None
    currency: str | None = None
    refund_id: uuid.UUID | None = None
    refunded_total: int | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CallbackAnswer:
    """The HTTP answer a provider expects: its success answer stops resends, anything else not."""

    status_code: int
    body: bytes = b""
    media_type: str | None = None


class PaymentProvider(abc.ABC):
    """One payment service behind the interface the payments service uses."""

    name: str
    currencies: frozenset[str] | None = None

    @abc.abstractmethod
    async def create_payment(self, request: PaymentRequest) -> CreatedPayment:
        """Open a payment at the provider and return what the client needs to pay it."""

    @abc.abstractmethod
    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> CallbackEvent:
        """Verify a callback on its raw body and headers; ``CallbackRejected`` if not authentic."""

    @abc.abstractmethod
    async def refund(self, request: RefundRequest) -> SubmittedRefund:
        """Ask the provider to refund part or all of a captured payment."""

    @abc.abstractmethod
    async def query(self, payment: PaymentLookup) -> RemotePayment:
        """The payment's state at the provider, for reconciliation."""

    @abc.abstractmethod
    async def close(self, payment: PaymentLookup) -> None:
        """Make an unpaid payment unpayable at the provider (its order was cancelled, or another
        payment replaces it); ``ProviderError`` if the provider refuses (it was paid, say)."""

    @abc.abstractmethod
    async def query_refund(self, refund: RefundLookup) -> RemoteStatus:
        """A submitted refund's state at the provider, for reconciliation."""

    def acknowledgement(self) -> CallbackAnswer:
        """The answer that tells the provider the callback was received and handled."""
        return CallbackAnswer(200, b"", None)

    def refusal(self, reason: str) -> CallbackAnswer:
        """The answer to a callback that is refused or must be resent later."""
        return CallbackAnswer(400, reason.encode(), "text/plain")


def parse_reference(reference: str | None) -> uuid.UUID | None:
    """Our payment (or refund) id from a merchant reference, or None if it is not one of ours."""
    if not reference:
        return None
    try:
        return uuid.UUID(hex=reference)
    except ValueError:
        return None


def is_fresh(timestamp: str) -> bool:
    """Whether a signed Unix time is within ``CALLBACK_TOLERANCE_S`` of now, so a captured
    delivery cannot be replayed later."""
    return timestamp.isdigit() and abs(time.time() - int(timestamp)) <= CALLBACK_TOLERANCE_S
