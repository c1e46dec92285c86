"""What every use case of payments shares: task names, the log, providers by name, the
webhook URL sent to providers, how a payment is looked up at its provider."""

from __future__ import annotations

import structlog

from agora.core.errors import NotFound
from agora.payments.models import Payment
from agora.payments.providers import enabled_providers
from agora.payments.providers.base import PaymentLookup, PaymentProvider
from agora.settings import Settings

SUBMIT_REFUND_TASK = "agora.payments.submit_refund"
RECONCILE_TASK = "agora.payments.reconcile"
WEBHOOK_PATH = "/api/v1/payments/webhooks/{provider}"

log = structlog.get_logger("agora.payments.service")


def provider_named(settings: Settings, name: str) -> PaymentProvider:
    """An enabled provider; ``NotFound`` for one that is not enabled (or does not exist)."""
    provider = enabled_providers(settings).get(name)
    if provider is None:
        raise NotFound(
            f"The payment provider {name!r} is not enabled.", code="provider_not_enabled"
        )
    return provider


def notify_url(settings: Settings, provider: str) -> str:
    """The public URL of a provider's webhook, sent with each payment and refund."""
    return settings.public_base_url.rstrip("/") + WEBHOOK_PATH.format(provider=provider)


def lookup(payment: Payment) -> PaymentLookup:
    """How to find a payment at its provider."""
    return PaymentLookup(payment.id, payment.provider_reference, payment.amount, payment.currency)
