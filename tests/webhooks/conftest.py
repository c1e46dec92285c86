"""Webhook test fixtures: the app allowing loopback targets, a real receiving HTTP server, and a
worker with beat whose retries are seconds instead of hours."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from fastapi import FastAPI

from agora.app import create_app
from agora.settings import Settings
from tests.support import BeatProcess, WorkerProcess, free_port

FAST_RETRIES = {
    "AGORA_WEBHOOK_ALLOW_PRIVATE": "true",
    "AGORA_WEBHOOK_TIMEOUT": "2",
    "AGORA_WEBHOOK_RETRY_BASE": "0.2",
    "AGORA_WEBHOOK_RETRY_MAX_DELAY": "0.5",
    "AGORA_WEBHOOK_DISPATCH_INTERVAL": "0.3",
    "AGORA_WEBHOOK_DISABLE_AFTER": "2",
    "AGORA_OUTBOX_RELAY_INTERVAL": "0.5",
}


@dataclass
class Received:
    """One request the receiver got."""

    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A real HTTP server standing in for a partner: it records what it gets and answers with
    the statuses queued in ``answers`` (then ``default``)."""

    port: int
    requests: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    default: int = 200
    redirect_to: str | None = None

    @property
    def url(self) -> str:
        """The receiving URL."""
        return f"http://127.0.0.1:{self.port}/hooks"

    async def handle(self, request: web.Request) -> web.Response:
        """Record the request and answer it."""
        self.requests.append(Received(dict(request.headers), await request.read()))
        status = self.answers.pop(0) if self.answers else self.default
        headers = {"Location": self.redirect_to} if self.redirect_to else {}
        return web.Response(status=status, text="ok" if status < 300 else "no", headers=headers)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A receiving server on a free port."""
    hooks = Receiver(port=free_port())
    application = web.Application()
    application.router.add_post("/hooks", hooks.handle)
    application.router.add_post("/elsewhere", hooks.handle)
    runner = web.AppRunner(application)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", hooks.port).start()
    yield hooks
    await runner.cleanup()


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The application, allowed to send to loopback receivers."""
    application = create_app(settings.model_copy(update={"webhook_allow_private": True}))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def delivering(service_env: dict[str, str]) -> Iterator[Callable[[], None]]:
    """Start a real worker and beat with fast webhook retries: ``delivering()``."""
    started: list[WorkerProcess | BeatProcess] = []

    def start() -> None:
        env = {**service_env, **FAST_RETRIES}
        worker, beat = WorkerProcess(env=env), BeatProcess(env=env)
        started.extend([worker, beat])
        worker.start()
        beat.start()

    yield start
    for process in started:
        process.stop()


async def settle(seconds: float = 0.5) -> None:
    """Let the receiver's server run a while (nothing is asserted on timing)."""
    await asyncio.sleep(seconds)
