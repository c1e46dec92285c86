"""``WS /ws/dashboard?range=15m``: the page's snapshot feed.

Staff only, the access token offered in the ``Sec-WebSocket-Protocol`` header like every socket's
(``core/security.py``) and checked before the handshake. Every ``SNAPSHOT_INTERVAL_S`` the newest
snapshot of the socket's range goes into a one-slot mailbox, and the sender takes whatever is in
it: a browser slower than the feed skips snapshots instead of building a backlog (newest wins).

The page may send ``{"type": "range", "range": "1h"}`` to switch ranges (answered at once) and
``{"type": "token", "token": "…"}`` after refreshing its access token. The token in hand is
checked on every tick: once it expires or is refused, the socket closes with ``4401`` and the page
reconnects with a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from agora.core.errors import Unauthorized
from agora.core.security import decode_access_token
from agora.core.serialization import loads
from agora.dashboard.ranges import DEFAULT_RANGE, RANGES, TimeRange
from agora.dashboard.snapshot import SnapshotBoard

POLICY_VIOLATION = 1008
TOKEN_EXPIRED = 4401


class Mailbox:
    """Holds only the newest message; taking it empties the slot."""

    def __init__(self) -> None:
        self._message: bytes | None = None
        self._filled = asyncio.Event()

    def put(self, message: bytes) -> None:
        """Replace whatever is waiting with ``message``."""
        self._message = message
        self._filled.set()

    async def take(self) -> bytes:
        """Wait for a message and take it."""
        await self._filled.wait()
        self._filled.clear()
        message, self._message = self._message, None
        assert message is not None
        return message


class Feed:
    """One page's socket: its token, its range and the loops that serve it."""

    def __init__(self, websocket: WebSocket, board: SnapshotBoard, token: str | None) -> None:
        self.websocket = websocket
        self.board = board
        self.token = token
        self.time_range: TimeRange = DEFAULT_RANGE
        self.mailbox = Mailbox()
        self.wake = asyncio.Event()

    def is_authorised(self) -> bool:
        """Whether the token in hand is a valid, unexpired staff token."""
        if self.token is None:
            return False
        try:
            principal = decode_access_token(self.websocket.app.state.services.settings, self.token)
        except Unauthorized:
            return False
        return principal.is_staff

    async def serve(self) -> None:
        """Run the three loops until one of them ends (disconnect, expiry, refusal)."""
        tasks = {
            asyncio.create_task(self._produce()),
            asyncio.create_task(self._send()),
            asyncio.create_task(self._receive()),
        }
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                await task

    async def _produce(self) -> None:
        while self.is_authorised():
            self.mailbox.put(await self.board.latest(self.time_range))
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.board.interval_s)
        await self.websocket.close(code=TOKEN_EXPIRED, reason="token expired or refused")

    async def _send(self) -> None:
        while True:
            await self.websocket.send_text((await self.mailbox.take()).decode())

    async def _receive(self) -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                self._handle(await self.websocket.receive_text())

    def _handle(self, text: str) -> None:
        try:
            message: Any = loads(text)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        if message.get("type") == "range" and message.get("range") in RANGES:
            self.time_range = RANGES[message["range"]]
            self.wake.set()
        elif message.get("type") == "token" and isinstance(message.get("token"), str):
            self.token = message["token"]
            self.wake.set()
