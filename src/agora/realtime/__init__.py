"""Realtime: order and ops events pushed to WebSocket clients from Redis pub/sub."""
