"""A real HTTP receiver of alert notifications that checks their signatures on its own."""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.support import free_port


@dataclass
class AlertReceiver:
    """Records each notification whose ``X-Agora-Signature`` is valid for ``secret`` (and the
    ``Host`` it was sent to); answers 500 to the first ``failures`` requests, 401 to a bad
    signature."""

    secret: str
    failures: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    refused: int = 0
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/hook"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not self._signed(request.headers.get("X-Agora-Signature", ""), body):
            self.refused += 1
            return web.Response(status=401)
        if self.failures:
            self.failures -= 1
            return web.Response(status=500)
        self.received.append(orjson.loads(body))
        self.hosts.append(request.host)
        return web.Response(status=204)

    def _signed(self, header: str, body: bytes) -> bool:
        parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
        timestamp = parts.get("t", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
            return False
        expected = hmac.new(
            self.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(expected, parts.get("v1", ""))
