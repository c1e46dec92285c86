"""Fetching safely: the address guard, size and redirect limits, conditional requests, our
User-Agent — against a real local HTTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from agora import __version__
from agora.crawler.fetch import Fetcher, FetchLimits, retry_after
from agora.settings import Settings
from tests.support import free_port

LIMITS = FetchLimits(
    timeout_s=2, max_bytes=10_000, max_redirects=2, allow_private=True, user_agent="test"
)


@pytest.fixture
async def server() -> AsyncIterator[str]:
    """A local server: a small page, a big one, redirect chains, and an echo of the headers."""

    async def small(request: web.Request) -> web.Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304)
        return web.Response(text="hello", headers={"ETag": '"v1"'})

    async def big(_: web.Request) -> web.Response:
        return web.Response(body=b"x" * 20_000)

    async def hop(request: web.Request) -> web.Response:
        left = int(request.match_info["left"])
        target = "/small" if left == 0 else f"/hop/{left - 1}"
        raise web.HTTPFound(target)

    async def echo(request: web.Request) -> web.Response:
        return web.Response(text=request.headers.get("User-Agent", ""))

    app = web.Application()
    app.router.add_get("/small", small)
    app.router.add_get("/big", big)
    app.router.add_get("/hop/{left}", hop)
    app.router.add_get("/echo", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_loopback_is_refused_unless_allowed(server: str) -> None:
    guarded = Fetcher(FetchLimits(2, 10_000, 2, allow_private=False, user_agent="t"), 2)
    try:
        result = await guarded.fetch(f"{server}/small")
        assert result.status == 0
        assert (result.error or "").startswith("refused")
        named = await guarded.fetch(f"{server.replace('127.0.0.1', 'localhost')}/small")
        assert (named.error or "").startswith("refused")
    finally:
        await guarded.close()


async def test_limits_and_conditional_requests(server: str) -> None:
    fetcher = Fetcher(LIMITS, 2)
    try:
        first = await fetcher.fetch(f"{server}/small")
        assert (first.status, first.body, first.etag) == (200, b"hello", '"v1"')
        assert (await fetcher.fetch(f"{server}/small", etag='"v1"')).status == 304
        assert (await fetcher.fetch(f"{server}/big")).error == "too large"
        followed = await fetcher.fetch(f"{server}/hop/1")
        assert (followed.status, followed.url) == (200, f"{server}/small")
        assert (await fetcher.fetch(f"{server}/hop/5")).error == "too many redirects"
    finally:
        await fetcher.close()


async def test_requests_name_agora_and_a_contact(server: str, settings: Settings) -> None:
    agent = settings.model_copy(update={"crawler_contact_url": "https://shop.example/bots"})
    assert agent.crawler_user_agent == f"AgoraPriceWatch/{__version__} (+https://shop.example/bots)"
    fetcher = Fetcher(
        FetchLimits.from_settings(agent.model_copy(update={"crawler_allow_private": True})), 1
    )
    try:
        echoed = await fetcher.fetch(f"{server}/echo")
        assert echoed.body.decode() == agent.crawler_user_agent
    finally:
        await fetcher.close()


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after("120") == 120
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0
    assert retry_after("soon") is None
    assert retry_after(None) is None
