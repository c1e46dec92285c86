"""``/docs`` renders in a real headless Chromium with every other host blocked, under its strict
CSP, and its "Authorize" button logs a real user in with the OAuth2 password flow."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from agora.core.apidocs import DOCS_CONTENT_SECURITY_POLICY
from tests.support import ApiProcess

CHROMIUM = Path("/usr/bin/chromium")
playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Chromium is not installed (apt-get install chromium)"
    ),
]
_ME = "#operations-accounts-me_api_v1_me_get"


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Debian's headless Chromium, driven by Playwright."""
    async with playwright_api.async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        yield chromium
        await chromium.close()


@pytest.fixture
def server(api_server: Callable[..., ApiProcess]) -> ApiProcess:
    """A real API server for the browser to load the page from."""
    return api_server()


async def _offline_page(browser: Any, server: ApiProcess) -> tuple[Any, list[str], list[str]]:
    """A page that can reach only ``server``; it records what it tried elsewhere and any CSP
    violation or script error."""
    page = await browser.new_page()
    elsewhere: list[str] = []
    problems: list[str] = []
    own_host = urlsplit(server.base_url).netloc

    async def only_own_host(route: Any) -> None:
        if urlsplit(route.request.url).netloc == own_host:
            await route.continue_()
        else:
            elsewhere.append(route.request.url)
            await route.abort()

    await page.route("**/*", only_own_host)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "console",
        lambda message: problems.append(message.text) if message.type == "error" else None,
    )
    return page, elsewhere, problems


async def test_docs_render_every_operation_offline(browser: Any, server: ApiProcess) -> None:
    page, elsewhere, problems = await _offline_page(browser, server)
    response = await page.goto(f"{server.base_url}/docs")
    assert response.headers["content-security-policy"] == DOCS_CONTENT_SECURITY_POLICY

    await page.locator(_ME).wait_for(timeout=30_000)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        document = (await http.get("/openapi.json")).json()
    operations = sum(len(methods) for methods in document["paths"].values())
    assert await page.locator(".opblock").count() == operations
    assert elsewhere == []
    assert problems == []


async def test_authorize_logs_a_real_user_in(browser: Any, server: ApiProcess) -> None:
    email, password = f"{uuid.uuid4().hex}@example.com", "a long enough password"
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        registered = await http.post(
            "/api/v1/auth/register", json={"email": email, "password": password}
        )
    assert registered.status_code == 201
    page, elsewhere, problems = await _offline_page(browser, server)
    await page.goto(f"{server.base_url}/docs")

    await page.locator("button.authorize").first.click()
    dialog = page.locator(".modal-ux")
    await dialog.locator("#oauth_username").fill(email)
    await dialog.locator("#oauth_password").fill(password)
    await dialog.locator(".auth-btn-wrapper button.authorize").click()
    await dialog.locator("button", has_text="Logout").wait_for(timeout=15_000)
    await dialog.locator("button.btn-done").click()

    operation = page.locator(_ME)
    await operation.locator(".opblock-summary").click()
    await operation.locator("button.try-out__btn").click()
    await operation.locator("button.execute").click()
    answer = operation.locator(".live-responses-table .response")
    await answer.locator(".response-col_status", has_text="200").wait_for(timeout=15_000)
    assert email in await answer.locator(".response-col_description").inner_text()
    assert elsewhere == []
    assert problems == []
