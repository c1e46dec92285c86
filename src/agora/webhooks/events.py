"""The event types partners can subscribe to, and the outbox topics they come from.

The engine knows no commerce domain: events reach it as outbox rows (topic and JSON payload),
and this table is the only place that names them. A topic not listed here is never sent.
"""

from __future__ import annotations

ALL_EVENTS = "*"
TEST_EVENT = "webhook.test"
ENDPOINT_DISABLED_TOPIC = "webhook.endpoint_disabled"

# outbox topic → the event type partners see
EVENT_TYPES: dict[str, str] = {
    "order.created": "order.placed",
    "order.paid": "order.paid",
    "order.cancelled": "order.cancelled",
    "order.refunded": "order.refunded",
    "order.shipped": "order.shipped",
    "payment.failed": "payment.failed",
    "stock.low": "stock.low",
    "flash_sale.sold_out": "flash_sale.sold_out",
    "pricewatch.undercut": "price.undercut",
    ENDPOINT_DISABLED_TOPIC: ENDPOINT_DISABLED_TOPIC,
}
SUBSCRIBABLE = frozenset(EVENT_TYPES.values())

# Types whose events an endpoint receives in the order they happened: a receiver must not see
# an order refunded before it saw it paid. Others (stock, prices) are sent as soon as they can.
_ORDERED_PREFIXES = ("order.",)


def is_ordered(event_type: str) -> bool:
    """Whether deliveries of ``event_type`` to one endpoint keep the events' order."""
    return event_type.startswith(_ORDERED_PREFIXES)


def wants(subscribed: list[str], event_type: str) -> bool:
    """Whether an endpoint subscribed to ``subscribed`` receives ``event_type``."""
    return ALL_EVENTS in subscribed or event_type in subscribed
