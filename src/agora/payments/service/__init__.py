"""Payments: open a payment for an order, apply verified callbacks exactly once, refund,
reconcile; one module per use case (``opening``, ``callbacks``, ``refunds``,
``reconciliation``), the functions other modules call gathered here.

Exactly once, whatever the order or number of deliveries:
1. the callback is verified on its raw body before anything is read from it;
2. a redelivery of an event already stored is acknowledged from one lookup of the inbox's unique
   (provider, event id), with no lock taken and nothing written;
3. otherwise the payment it names is row-locked, so callbacks about one payment run one after
   another, and the event is inserted into the inbox: a redelivery racing its first delivery
   inserts nothing and is acknowledged without effect;
4. the payment moves with an atomic ``UPDATE … WHERE status IN (…)``, so two different events
   meaning "paid" (a webhook and the reconciliation, say) still pay the order once, and a
   "failed" arriving after "succeeded" changes nothing.
A callback naming a payment we do not know (yet) writes nothing and is refused, so the provider
resends it later.
"""

from agora.payments.service.callbacks import (
    CallbackResult,
    apply_event,
    complete_dev_payment,
    handle_callback,
)
from agora.payments.service.common import RECONCILE_TASK, SUBMIT_REFUND_TASK, provider_named
from agora.payments.service.opening import close_open_payment, create_payment, get_payment
from agora.payments.service.reconciliation import reconcile
from agora.payments.service.refunds import (
    Refunder,
    refund_payment,
    request_refund,
    submit_refund,
)

__all__ = [
    "RECONCILE_TASK",
    "SUBMIT_REFUND_TASK",
    "CallbackResult",
    "Refunder",
    "apply_event",
    "close_open_payment",
    "complete_dev_payment",
    "create_payment",
    "get_payment",
    "handle_callback",
    "provider_named",
    "reconcile",
    "refund_payment",
    "request_refund",
    "submit_refund",
]
