"""The crawl and price-watch panels in a real headless Chromium: a local site crawled by a real
crawler loop shows its host row, and the undercut it reads shows in price watch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agora.core.db import Database
from agora.crawler.frontier import Frontier
from agora.dashboard.snapshot import MAX_SNAPSHOT_BYTES
from agora.pricewatch.crawl import PriceWatchHandler
from agora.settings import Settings
from tests.crawler.conftest import running_crawler
from tests.crawler.sites import local_sites
from tests.dashboard.support import PageRecorder, open_live
from tests.factories import create_variant
from tests.pricewatch.support import watch
from tests.support import ApiProcess

# A crawl, a batch written to PostgreSQL, then the next snapshot: slower on a busy machine.
CRAWL_TIMEOUT_MS = 30_000
expect = pytest.importorskip("playwright.async_api", reason="Playwright is not installed").expect


async def test_a_crawled_site_shows_its_host_and_its_undercut(
    page: tuple[Any, PageRecorder],
    server: ApiProcess,
    database: Database,
    frontier: Frontier,
    crawl_settings: Settings,
    tmp_path: Path,
) -> None:
    tab, recorder = page
    variant_id = await create_variant(database, price=1050, currency="EUR")
    with local_sites(tmp_path, {"robots": "", "pages": 1}) as sites:
        host = f"127.0.0.1:{sites.ports[0]}"
        await watch(database, frontier, sites.base(0), ["/p/0"], variant_id)
        await open_live(tab, server.base_url, database)
        async with running_crawler(frontier, crawl_settings, PriceWatchHandler(database)):
            crawl = tab.locator('[data-panel="crawl"]')
            row = crawl.locator("[data-rows] tr", has_text=host)
            await expect(row).to_have_count(1, timeout=CRAWL_TIMEOUT_MS)
            await expect(row.locator("td").nth(3)).not_to_have_text("0", timeout=CRAWL_TIMEOUT_MS)
            undercuts = tab.locator('[data-panel="pricewatch"] [data-undercuts] tr')
            await expect(undercuts).to_have_count(1, timeout=CRAWL_TIMEOUT_MS)
            await expect(undercuts).to_contain_text(f"{host}/p/0")
            await expect(undercuts).to_contain_text("€10.00")
            await expect(undercuts).to_contain_text("€0.50")
            changes = tab.locator('[data-panel="pricewatch"] [data-changes]')
            await expect(changes).to_contain_text("in stock")

    assert recorder.frames
    assert max(recorder.frames) <= MAX_SNAPSHOT_BYTES
