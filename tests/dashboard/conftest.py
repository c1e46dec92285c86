"""Fixtures of the dashboard tests: a real ``agora api`` server for the module, a headless
Chromium driven by Playwright, skipped with the reason when either is not installed here, and
the crawler's fixtures for the crawl panels."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import AsyncIterator, Iterator
from typing import Any, TypeVar

import pytest

from tests.crawler.conftest import crawl_settings, frontier
from tests.dashboard.support import LogLoaderProcess, PageRecorder
from tests.support import ApiProcess

__all__ = ["crawl_settings", "frontier"]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


Process = TypeVar("Process", ApiProcess, LogLoaderProcess)


def _running(process: Process) -> Iterator[Process]:
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def server(service_env: dict[str, str]) -> Iterator[ApiProcess]:
    """One real API server (``agora api``, WebSockets) for the tests of a module, logging its own
    requests into the log platform as in production."""
    env = {**service_env, "AGORA_WEBHOOK_ALLOW_PRIVATE": "true", "AGORA_LOG_SELF_REQUESTS": "true"}
    yield from _running(ApiProcess(env=env))


@pytest.fixture
def log_loader(service_env: dict[str, str]) -> Iterator[LogLoaderProcess]:
    """A real log loader for one test (each test's clean Redis drops the loaders' group)."""
    yield from _running(LogLoaderProcess(env=service_env))


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    """Debian's Chromium, headless, through Playwright's async API."""
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("Playwright is not installed (pip install playwright)")
    if not shutil.which(CHROMIUM):
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser: Any, server: ApiProcess) -> AsyncIterator[tuple[Any, PageRecorder]]:
    """A fresh page at 1280×800 with its recorder; the recorder is checked after the test (no
    error, no foreign request, no token in a socket's URL)."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB")
    tab = await context.new_page()
    recorder = PageRecorder(origin=server.base_url)
    recorder.attach(tab)
    yield tab, recorder
    await context.close()
    assert recorder.errors == []
    assert recorder.foreign_requests() == []
    assert [url for url in recorder.sockets if "token" in url] == []
