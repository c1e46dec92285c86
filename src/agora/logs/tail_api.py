"""``WS /ws/logs?q=…&after=…``: the live tail, for staff.

The access token travels in the ``Sec-WebSocket-Protocol`` header like every socket's
(``core/security.py``: ``agora`` and ``bearer.<access token>``), never in the URL, and is
checked, with the query and position, before the handshake is accepted: a refused tail gets no
socket (HTTP 403). Messages are those of ``tail.py``; a client that reconnects with the ``id`` of
the last line it received resumes where it left off.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

import orjson
from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect

from agora.core.errors import AgoraError
from agora.core.security import accept_websocket, decode_access_token, websocket_token
from agora.logs.tail import TailSubscription, subscribe

router = APIRouter(tags=["logs"])
POLICY_VIOLATION = 1008


@router.websocket("/ws/logs")
async def tail(
    websocket: WebSocket,
    q: Annotated[str, Query(max_length=2000)] = "",
    after: Annotated[str | None, Query(max_length=64)] = None,
) -> None:
    """Push each stored line matching ``q`` as it is stored."""
    services = websocket.app.state.services
    token = websocket_token(websocket)
    try:
        if token is None or not decode_access_token(services.settings, token).is_staff:
            raise PermissionError
        subscription = subscribe(
            services.redis,
            q,
            after=after,
            max_lines_per_second=services.settings.log_tail_max_lines_per_second,
        )
    except (AgoraError, PermissionError):
        await websocket.close(code=POLICY_VIOLATION)
        return
    await accept_websocket(websocket)
    forwarding = asyncio.create_task(_forward(websocket, subscription))
    listening = asyncio.create_task(_until_disconnected(websocket))
    _, pending = await asyncio.wait({forwarding, listening}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
            await task


async def _forward(websocket: WebSocket, subscription: TailSubscription) -> None:
    async for message in subscription.messages():
        await websocket.send_text(orjson.dumps(message).decode())


async def _until_disconnected(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.receive_text()
