"""The dashboard in a real headless Chromium against a real API server: sign-in, figures that
move without reload, a customer refused, no console errors and no request to another host."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from agora.core.db import Database
from agora.core.embedded import ServiceUrls
from agora.core.jobs import configure_celery
from agora.core.security import Role
from agora.dashboard.snapshot import MAX_SNAPSHOT_BYTES
from agora.logs import alerts
from agora.settings import Settings
from tests.dashboard.support import (
    LogLoaderProcess,
    PageRecorder,
    create_account,
    open_live,
    place_paid_order,
    searchable,
    ship,
    sign_in,
)
from tests.factories import create_user, create_variant
from tests.support import ApiProcess, free_port, wait_for

FIVE_SECONDS_MS = 5000
FIRST_LOAD_BUDGET = 300 * 1024
# Log lines go through the ingest buffer and a loader process: slower on a busy machine.
LOG_TIMEOUT_MS = 30_000
expect = pytest.importorskip("playwright.async_api", reason="Playwright is not installed").expect


def metric(page: Any, name: str) -> Any:
    """The element of a headline number."""
    return page.locator(f'[data-metric="{name}"]')


async def test_a_paid_order_moves_the_figures_without_reload(
    page: tuple[Any, PageRecorder], server: ApiProcess, database: Database, settings: Settings
) -> None:
    tab, recorder = page
    buyer = await create_user(database, settings)
    variant = await create_variant(database, price=1999, currency="EUR", stock=5)

    await open_live(tab, server.base_url, database)
    await expect(metric(tab, "orders_per_minute")).to_have_text("0")
    navigations = len([url for url in recorder.requests if url.endswith("/dashboard")])

    async with httpx.AsyncClient(base_url=server.base_url) as http:
        await place_paid_order(http, buyer.headers, variant)

    await expect(metric(tab, "orders_per_minute")).to_have_text("1", timeout=FIVE_SECONDS_MS)
    await expect(metric(tab, "revenue_per_minute")).to_have_text("€19.99", timeout=FIVE_SECONDS_MS)
    assert len([url for url in recorder.requests if url.endswith("/dashboard")]) == navigations


async def test_a_customer_is_told_staff_only_and_sees_no_data(
    page: tuple[Any, PageRecorder], server: ApiProcess, database: Database
) -> None:
    tab, recorder = page
    customer = await create_account(database, Role.CUSTOMER)

    await sign_in(tab, server.base_url, customer)

    notice = tab.locator('[data-notice][data-reason="staff_only"]')
    await notice.wait_for()
    assert "Staff only" in await notice.inner_text()
    assert await tab.locator("[data-board]").is_hidden()
    assert recorder.feeds_opened() == 0


async def test_signing_out_drops_the_feed(
    page: tuple[Any, PageRecorder], server: ApiProcess, database: Database
) -> None:
    tab, _ = page
    await open_live(tab, server.base_url, database, Role.ADMIN)

    await tab.click("[data-sign-out]")

    await tab.locator('[data-panel="signin"]').wait_for()
    assert await tab.locator("[data-board]").is_hidden()


async def test_first_load_is_small_besides_the_chart_library(
    browser: Any, server: ApiProcess, database: Database
) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    tab = await context.new_page()
    responses: list[Any] = []
    tab.on("response", lambda response: responses.append(response))
    recorder = PageRecorder(origin=server.base_url)
    recorder.attach(tab)

    await open_live(tab, server.base_url, database)
    await expect(metric(tab, "orders_per_minute")).to_have_text("0")
    transferred = 0
    for response in responses:
        if "/dashboard/vendor/" in response.url:
            continue
        sizes = await response.request.sizes()
        transferred += sizes["responseBodySize"] + sizes["responseHeadersSize"]
    await context.close()

    assert 0 < transferred <= FIRST_LOAD_BUDGET
    assert recorder.frames
    assert max(recorder.frames) <= MAX_SNAPSHOT_BYTES
    assert recorder.errors == []


async def test_the_range_picker_switches_the_charts(
    page: tuple[Any, PageRecorder], server: ApiProcess, database: Database
) -> None:
    tab, _ = page
    await open_live(tab, server.base_url, database)
    await tab.locator('[data-board][data-range="15m"]').wait_for(state="attached")

    for name in ("1h", "24h", "7d"):
        await tab.click(f'button[data-range="{name}"]')
        await tab.locator(f'[data-board][data-range="{name}"]').wait_for(state="attached")
        assert (
            await tab.locator(f'button[data-range="{name}"]').get_attribute("aria-pressed")
            == "true"
        )


async def test_the_page_reads_in_chinese_and_fits_a_phone(
    browser: Any, server: ApiProcess, database: Database
) -> None:
    context = await browser.new_context(
        viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True
    )
    tab = await context.new_page()
    recorder = PageRecorder(origin=server.base_url)
    recorder.attach(tab)

    await open_live(tab, server.base_url, database)
    assert await tab.locator("h1").inner_text() == "Agora 运营看板"
    await expect(metric(tab, "orders_per_minute")).to_have_text("0")
    width = await tab.evaluate("() => document.documentElement.scrollWidth")
    await tab.click('a[hreflang="en"]')
    await expect(tab.locator("h1")).to_have_text("Agora operations")
    await context.close()

    assert width <= 390
    assert recorder.errors == []


@pytest.fixture
async def staff_http(
    server: ApiProcess, log_loader: LogLoaderProcess, database: Database, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    """A member of staff's HTTP client on the server, with a log loader running."""
    staff = await create_user(database, settings, Role.STAFF)
    async with httpx.AsyncClient(base_url=server.base_url, headers=staff.headers) as http:
        yield http


async def test_a_request_made_now_appears_in_the_tail_filtered_by_its_path(
    page: tuple[Any, PageRecorder], staff_http: httpx.AsyncClient, database: Database
) -> None:
    tab, _ = page
    http = staff_http
    wanted = f"/api/v1/products/probe-{uuid.uuid4().hex}"
    await open_live(tab, str(http.base_url), database)
    tail = tab.locator('[data-panel="tail"]')
    await tail.locator('input[name="q"]').fill(f"path:{wanted}")
    await tail.locator('button[type="submit"]').click()
    await expect(tail).to_have_attribute("data-live-query", f"path:{wanted}")

    assert (await http.get("/api/v1/products")).status_code == 200
    assert (await http.get(wanted)).status_code == 404
    lines = tail.locator("[data-tail-lines] li")
    await expect(lines).to_have_count(1, timeout=LOG_TIMEOUT_MS)
    await expect(lines.first).to_contain_text(wanted)
    await expect(lines.first).to_contain_text("404")

    await tail.locator("[data-tail-pause]").click()
    assert (await http.get(wanted, params={"while": "paused"})).status_code == 404
    await tail.locator("[data-tail-pause]").click()
    await expect(lines).to_have_count(2, timeout=LOG_TIMEOUT_MS)

    await lines.first.click()
    fields = tail.locator("[data-tail-fields]")
    await expect(fields.locator("dt", has_text="service")).to_have_count(1)
    await expect(fields).to_contain_text("agora")
    await expect(fields.locator("dt", has_text="request_id")).to_have_count(1)


async def test_a_firing_alert_appears(
    page: tuple[Any, PageRecorder],
    staff_http: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    service_urls: ServiceUrls,
) -> None:
    tab, _ = page
    http = staff_http
    probe = f"/api/v1/alert-probe/{uuid.uuid4().hex}"
    rule = {
        "name": "probe answers 5xx", "q": f"path:{probe}", "metric": "count", "op": ">",
        "threshold": 0, "window_s": 300, "for_s": 0,
        "webhook_url": f"http://127.0.0.1:{free_port()}/alerts",
    }  # fmt: skip
    await open_live(tab, str(http.base_url), database)
    created = await http.post("/api/v1/alerts/rules", json=rule)
    assert created.status_code == 201, created.text
    await ship(http, {"path": probe, "status": 503})
    await wait_for(lambda: searchable(http, f"path:{probe}"), timeout=LOG_TIMEOUT_MS / 1000)

    configure_celery(service_urls.broker_url, settings.task_queue)
    async with database.unit_of_work() as session:
        assert len(await alerts.evaluate_rules(session)) == 1

    panel = tab.locator('[data-panel="alerts"]')
    await expect(panel.locator('[data-alert="probe answers 5xx"]')).to_be_visible(
        timeout=LOG_TIMEOUT_MS
    )
    await expect(panel.locator("[data-rules]")).to_contain_text("firing")


async def test_the_token_is_refreshed_before_it_expires_and_the_feed_goes_on(
    browser: Any, api_server: Callable[..., ApiProcess], database: Database
) -> None:
    short_lived = api_server(AGORA_ACCESS_TOKEN_TTL="6")
    context = await browser.new_context()
    tab = await context.new_page()
    recorder = PageRecorder(origin=short_lived.base_url)
    recorder.attach(tab)
    await open_live(tab, short_lived.base_url, database)

    for _ in range(2):
        async with tab.expect_request("**/api/v1/auth/refresh", timeout=20_000):
            pass
    await expect(tab.locator("[data-status]")).to_have_attribute("data-state", "live")
    await expect(metric(tab, "orders_per_minute")).to_have_text("0")
    await context.close()

    assert recorder.feeds_opened() == 1
    assert recorder.errors == []
