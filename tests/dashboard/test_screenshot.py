"""The page under load, photographed: log lines and orders flow in while the page is live, and
the screenshot is kept as a test artefact (``.agora-test/artefacts/dashboard.png``, or the folder
named by ``AGORA_TEST_ARTEFACTS``)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from agora.core.db import Database
from agora.core.embedded import ServiceUrls
from agora.core.jobs import configure_celery
from agora.core.security import Role
from agora.logs import alerts
from agora.logs.models import AlertState
from agora.settings import Settings
from tests.conftest import TEST_DATA_DIR
from tests.dashboard.support import (
    LogLoaderProcess,
    PageRecorder,
    open_live,
    place_paid_order,
    ship,
)
from tests.factories import create_user, create_variant
from tests.flashsale.support import create_sale, sale_body
from tests.orders.support import ADDRESS
from tests.support import ApiProcess, free_port, wait_for

ARTEFACTS = Path(os.environ.get("AGORA_TEST_ARTEFACTS", TEST_DATA_DIR / "artefacts"))
ROUTES = ["/api/v1/products", "/api/v1/products/{id}", "/api/v1/orders", "/api/v1/carts",
          "/api/v1/flash-sales/{id}/purchase", "/api/v1/payments/webhooks/alipay"]  # fmt: skip
RULES = [
    {"name": "checkout 5xx", "q": "status:[500 TO 599] AND path:/api/v1/orders*",
     "metric": "count", "op": ">", "threshold": 5, "window_s": 300, "for_s": 0},
    {"name": "slow p95", "q": "service:edge", "metric": "p95", "op": ">", "threshold": 2000,
     "window_s": 300, "for_s": 60},
]  # fmt: skip
expect = pytest.importorskip("playwright.async_api", reason="Playwright is not installed").expect


def traffic(count: int, minutes_ago: int = 0) -> list[dict[str, Any]]:
    """Access-log lines of a busy shop, ``minutes_ago``: mostly fast successes, some client and
    server errors."""
    at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)
    lines = []
    for _ in range(count):
        path = random.choice(ROUTES).replace("{id}", str(random.randint(1, 500)))
        status = random.choices([200, 201, 304, 404, 429, 500, 503], [60, 10, 10, 8, 4, 3, 2])[0]
        lines.append(
            {
                "ts": at.isoformat(),
                "service": "edge",
                "path": path,
                "method": "GET" if "products" in path else "POST",
                "status": status,
                "duration_ms": round(random.lognormvariate(3, 0.8), 2),
                "ip": f"203.0.113.{random.randint(1, 40)}",
                "bytes": random.randint(200, 9000),
            }
        )
    return lines


async def shop_load(server: ApiProcess, database: Database, settings: Settings) -> None:
    """Orders in two currencies, a live flash sale with queued tickets, and log traffic."""
    staff = await create_user(database, settings, Role.STAFF)
    buyers = [await create_user(database, settings) for _ in range(4)]
    euro = await create_variant(database, price=2499, currency="EUR", stock=50)
    yuan = await create_variant(database, price=9900, currency="CNY", stock=50)
    on_sale = await create_variant(database, price=5000, currency="EUR", stock=100)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        sale = await create_sale(http, staff.headers, sale_body(on_sale, 40))
        for buyer in buyers:
            await place_paid_order(http, buyer.headers, euro)
            await place_paid_order(http, buyer.headers, yuan)
            await http.post(
                f"/api/v1/flash-sales/{sale['id']}/purchase",
                json={"quantity": 1, "shipping_address": ADDRESS},
                headers={**buyer.headers, "Idempotency-Key": uuid.uuid4().hex},
            )
        http.headers.update(staff.headers)
        for rule in RULES:
            hook = f"http://127.0.0.1:{free_port()}/alerts"
            created = await http.post("/api/v1/alerts/rules", json={**rule, "webhook_url": hook})
            assert created.status_code == 201, created.text
        for minutes_ago in range(14, 0, -1):
            await ship(http, *traffic(random.randint(100, 300), minutes_ago))
        for _ in range(10):
            await ship(http, *traffic(300))
            await asyncio.sleep(0.2)


async def evaluated(database: Database) -> bool:
    """Evaluate the alert rules as beat would; whether one fires."""
    async with database.unit_of_work() as session:
        await alerts.evaluate_rules(session)
        return bool(await alerts.list_episodes(session, status=AlertState.FIRING))


@pytest.mark.timeout(180)
async def test_a_screenshot_under_load_is_kept(
    browser: Any,
    server: ApiProcess,
    log_loader: LogLoaderProcess,
    database: Database,
    settings: Settings,
    service_urls: ServiceUrls,
) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    tab = await context.new_page()
    recorder = PageRecorder(origin=server.base_url)
    recorder.attach(tab)
    await open_live(tab, server.base_url, database)

    await shop_load(server, database, settings)
    configure_celery(service_urls.broker_url, settings.task_queue)
    await wait_for(lambda: evaluated(database), timeout=30)
    await expect(tab.locator('[data-metric="orders_per_minute"]')).to_have_text("8")
    await expect(tab.locator('[data-panel="top_paths"] td').first).not_to_have_text("Nothing yet")
    await expect(tab.locator('[data-alert="checkout 5xx"]')).to_be_visible(timeout=15_000)
    await asyncio.to_thread(ARTEFACTS.mkdir, parents=True, exist_ok=True)
    shot = ARTEFACTS / "dashboard.png"
    await tab.screenshot(path=str(shot), full_page=True)
    await context.close()

    assert shot.stat().st_size > 10_000
    assert recorder.errors == []
    assert recorder.foreign_requests() == []
    assert max(recorder.frames) <= 16 * 1024
