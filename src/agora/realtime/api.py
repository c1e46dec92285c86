"""``WS /api/v1/ws?token=…``: a buyer's own order events, or (staff) the ops stream, pushed live.

The access token travels in the query string because browsers cannot set headers on a WebSocket.
It is checked before the handshake is accepted: an invalid token, or a buyer asking for the ops
stream, is refused with HTTP 403 and never gets a socket. Each message is the outbox event as
JSON: ``{id, topic, data, user_id, created_at}``; ``id`` grows with time, so a client can order
events and drop one it saw twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Literal

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect

from agora.core.errors import Unauthorized
from agora.core.security import Principal, decode_access_token
from agora.realtime.hub import OPS_AUDIENCE, EventHub, Subscription, user_audience

TRY_AGAIN_LATER = 1013
router = APIRouter(tags=["realtime"])


@router.websocket("/ws")
async def events(
    websocket: WebSocket,
    token: Annotated[str, Query(max_length=4096)],
    stream: Literal["orders", "ops"] = "orders",
) -> None:
    """Stream the caller's events (``stream=orders``) or, for staff, every event (``ops``)."""
    principal = _authenticate(websocket, token)
    if principal is None or (stream == "ops" and not principal.is_staff):
        await websocket.close(code=1008)
        return
    audience = OPS_AUDIENCE if stream == "ops" else user_audience(principal.user_id)
    hub: EventHub = websocket.app.state.event_hub
    with hub.subscribe(audience) as subscription:
        await websocket.accept()
        forwarding = asyncio.create_task(_forward(websocket, subscription))
        listening = asyncio.create_task(_until_disconnected(websocket))
        _, pending = await asyncio.wait(
            {forwarding, listening}, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                await task


def _authenticate(websocket: WebSocket, token: str) -> Principal | None:
    try:
        return decode_access_token(websocket.app.state.services.settings, token)
    except Unauthorized:
        return None


async def _forward(websocket: WebSocket, subscription: Subscription) -> None:
    """Send each message of the subscription; close the socket if it fell behind."""
    while (message := await subscription.next()) is not None:
        await websocket.send_text(message.decode())
    await websocket.close(code=TRY_AGAIN_LATER, reason="too slow: reconnect and resync")


async def _until_disconnected(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends until it goes away."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.receive_text()
