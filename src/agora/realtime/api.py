"""``WS /ws``: a buyer's own order events, or (staff) the ops stream, pushed live.

The access token never travels in the URL, which proxies, servers and browsers write to their
logs and history. A client sends it either way:

- in the ``Sec-WebSocket-Protocol`` header, as every socket of Agora does (``core/security.py``:
  ``agora`` and ``bearer.<access token>``); the token is checked before the handshake is
  accepted, so a bad one is refused with HTTP 403 and never gets a socket;
- or as the first message, ``{"token": "<access token>"}``, within ``AUTH_TIMEOUT_S`` of opening,
  for clients that cannot set subprotocols; a bad or missing one closes the socket with 1008.

A buyer asking for the ops stream, or a token already revoked, is refused the same way. An open
socket is closed with 4401 when its token expires, and at once when the user's tokens are revoked
(logout, password or role change, disabled account: ``core/sessions.py``, ``realtime/hub.py``).
The path sits outside ``/api/v1`` so the edge proxy can give sockets their own idle timeout
(``deploy/nginx.conf``, ``location /ws``). Each message is the outbox event as JSON:
``{id, topic, data, user_id, created_at}``; ``id`` grows with time, so a client can order events
and drop one it saw twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Literal

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from redis.exceptions import RedisError
from starlette.websockets import WebSocketState

from agora.core.errors import Unauthorized
from agora.core.security import (
    Principal,
    accept_websocket,
    decode_access_token,
    websocket_token,
)
from agora.core.sessions import is_revoked
from agora.realtime.hub import (
    OPS_AUDIENCE,
    TOKEN_NO_LONGER_VALID,
    TRY_AGAIN_LATER,
    Ending,
    EventHub,
    Subscription,
    user_audience,
)

AUTH_TIMEOUT_S = 10.0
POLICY_VIOLATION = 1008
TOKEN_EXPIRED = Ending(TOKEN_NO_LONGER_VALID, "token expired: reconnect with a fresh one")
router = APIRouter(tags=["realtime"])

Stream = Literal["orders", "ops"]


@router.websocket("/ws")
async def events(websocket: WebSocket, stream: Stream = "orders") -> None:
    """Stream the caller's events (``stream=orders``) or, for staff, every event (``ops``)."""
    token = websocket_token(websocket)
    if token is None:
        await accept_websocket(websocket)
        try:
            token = await _token_from_first_message(websocket)
        except WebSocketDisconnect:
            return
    principal = _principal(websocket, token, stream)
    if principal is None:
        await websocket.close(code=POLICY_VIOLATION, reason="authentication failed")
        return
    audience = OPS_AUDIENCE if stream == "ops" else user_audience(principal.user_id)
    hub: EventHub = websocket.app.state.event_hub
    # Subscribed before the revocation check: a revocation published in between still ends it.
    with hub.subscribe(audience, principal) as subscription:
        refusal = await _revocation_refusal(websocket, principal)
        if refusal is not None:
            await websocket.close(code=refusal.code, reason=refusal.reason)
            return
        if websocket.client_state == WebSocketState.CONNECTING:
            await accept_websocket(websocket)
        await _serve(websocket, subscription, principal.expires_at)


async def _token_from_first_message(websocket: WebSocket) -> str | None:
    """The token of the first message, ``{"token": "…"}``; None if it does not come in time."""
    try:
        async with asyncio.timeout(AUTH_TIMEOUT_S):
            message = await websocket.receive_text()
    except TimeoutError:
        return None
    with contextlib.suppress(orjson.JSONDecodeError):
        fields = orjson.loads(message)
        if isinstance(fields, dict) and isinstance(fields.get("token"), str):
            token: str = fields["token"]
            return token
    return None


def _principal(websocket: WebSocket, token: str | None, stream: Stream) -> Principal | None:
    """The caller, if the token is valid and may read ``stream``."""
    if token is None:
        return None
    try:
        principal = decode_access_token(websocket.app.state.services.settings, token)
    except Unauthorized:
        return None
    if stream == "ops" and not principal.is_staff:
        return None
    return principal


async def _revocation_refusal(websocket: WebSocket, principal: Principal) -> Ending | None:
    """Why the socket must not open: its token was revoked, or Redis cannot tell right now."""
    try:
        revoked = await is_revoked(
            websocket.app.state.services.redis, principal.user_id, principal.token_epoch
        )
    except RedisError:
        return Ending(TRY_AGAIN_LATER, "temporarily unavailable")
    if revoked:
        return Ending(POLICY_VIOLATION, "token revoked")
    return None


async def _serve(websocket: WebSocket, subscription: Subscription, expires_at: float) -> None:
    """Forward events until the client leaves or the subscription ends (the token expired or
    was revoked, or the socket fell behind)."""
    expiry = asyncio.get_running_loop().call_later(
        max(0.0, expires_at - time.time()), subscription.end, TOKEN_EXPIRED
    )
    forwarding = asyncio.create_task(_forward(websocket, subscription))
    listening = asyncio.create_task(_until_disconnected(websocket))
    try:
        _, pending = await asyncio.wait(
            {forwarding, listening}, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                await task
    finally:
        expiry.cancel()


async def _forward(websocket: WebSocket, subscription: Subscription) -> None:
    """Send each message of the subscription; close the socket with the reason it ended."""
    while (message := await subscription.next()) is not None:
        await websocket.send_text(message.decode())
    assert subscription.ending is not None
    await websocket.close(code=subscription.ending.code, reason=subscription.ending.reason)


async def _until_disconnected(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends until it goes away."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.receive_text()
