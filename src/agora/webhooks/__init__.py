"""Merchant webhooks: outgoing events to partners, signed, retried, logged and replayable."""
