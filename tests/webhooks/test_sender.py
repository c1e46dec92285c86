"""One attempt on the wire: the SSRF guard on the address actually connected to, timeouts."""

from __future__ import annotations

import asyncio
import uuid

from aiohttp import web

from agora.webhooks.delivery import Request
from agora.webhooks.sender import post
from tests.support import free_port
from tests.webhooks.conftest import Receiver


def request_to(url: str) -> Request:
    body = {"id": "evt_1", "type": "webhook.test", "created": 0, "data": {}}
    return Request(uuid.uuid4(), url, ["whsec_x"], body)


async def test_a_loopback_target_is_refused_when_connecting(receiver: Receiver) -> None:
    outcome = await post(request_to(receiver.url), timeout_s=2, allow_private=False)
    assert outcome.error is not None
    assert outcome.error.startswith("refused")
    assert not outcome.is_success
    assert receiver.requests == []
    allowed = await post(request_to(receiver.url), timeout_s=2, allow_private=True)
    assert (allowed.status_code, allowed.response_body) == (200, "ok")


async def test_a_receiver_that_does_not_answer_in_time_fails_the_attempt() -> None:
    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(text="late")

    application = web.Application()
    application.router.add_post("/", slow)
    runner = web.AppRunner(application)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        outcome = await post(
            request_to(f"http://127.0.0.1:{port}/"), timeout_s=0.5, allow_private=True
        )
    finally:
        await runner.cleanup()
    assert outcome.status_code is None
    assert outcome.error is not None
    assert not outcome.is_success
