"""Price watch on the crawler, against local sites: history, undercuts once per change, 304s."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from agora.core.db import Database
from agora.crawler.frontier import Frontier
from agora.pricewatch.crawl import PriceWatchHandler
from agora.settings import Settings
from tests.crawler.conftest import running_crawler
from tests.crawler.sites import LocalSites, local_sites
from tests.factories import Account, create_variant
from tests.pricewatch.support import history, undercut_events, watch
from tests.support import wait_for


async def test_each_change_is_recorded_once_and_each_undercut_raised_once(
    tmp_path: Path,
    database: Database,
    frontier: Frontier,
    crawl_settings: Settings,
    client: httpx.AsyncClient,
    staff: Account,
) -> None:
    variant_id = await create_variant(database, price=1050, currency="EUR")
    with local_sites(tmp_path, {"robots": "", "pages": 1}) as sites:
        [target_id] = await watch(database, frontier, sites.base(0), ["/p/0"], variant_id)
        async with running_crawler(frontier, crawl_settings, PriceWatchHandler(database)):
            await wait_for(lambda: _history_is(database, target_id, [1000]), timeout=20)
            await wait_for(lambda: _not_modified(sites, 2), timeout=20)
            undercuts = await client.get("/api/v1/pricewatch/undercuts", headers=staff.headers)
            [undercut] = undercuts.json()["items"]
            assert undercut["gap"] == {"amount": 50, "currency": "EUR"}
            sites.set_price(0, "/p/0", 990)
            await wait_for(lambda: _history_is(database, target_id, [1000, 990]), timeout=20)
            sites.set_price(0, "/p/0", 1100)
            await wait_for(lambda: _history_is(database, target_id, [1000, 990, 1100]), timeout=20)
            await wait_for(lambda: _not_modified(sites, 4), timeout=20)
        events = await undercut_events(database)
        assert [event["price"] for event in events] == [
            {"amount": 1000, "currency": "EUR"},
            {"amount": 990, "currency": "EUR"},
        ]
        detail = await client.get(f"/api/v1/pricewatch/targets/{target_id}", headers=staff.headers)
        body = detail.json()
        assert body["price_amount"] == 1100
        assert body["in_stock"] is True
        assert [change["price_amount"] for change in body["history"]] == [1100, 990, 1000]
        assert body["last_fetched_at"] is not None
        assert body["next_due_at"] is not None
        assert (await client.get("/api/v1/pricewatch/undercuts", headers=staff.headers)).json()[
            "items"
        ] == []
        stats = (await client.get("/api/v1/crawler/stats", headers=staff.headers)).json()
        [host] = stats["hosts"]
        assert host["host"] == f"127.0.0.1:{sites.ports[0]}"
        assert host["fetched"] >= 7
        assert host["not_modified"] >= 4
        assert stats["pages_per_second"] > 0


async def _history_is(database: Database, target_id: uuid.UUID, prices: list[int]) -> bool:
    recorded = await history(database, target_id)
    assert recorded == prices[: len(recorded)], recorded
    return recorded == prices


async def _not_modified(sites: LocalSites, count: int) -> bool:
    statuses = [hit.status for hit in sites.hits(0)]
    return statuses[-count:] == [304] * count


async def test_each_markup_is_read(
    tmp_path: Path, database: Database, frontier: Frontier, crawl_settings: Settings
) -> None:
    markups = ("jsonld", "microdata", "opengraph", "plain")
    sites_config = [{"robots": "", "pages": 3, "markup": markup} for markup in markups]
    rules = {"price": ".buy .price::text", "currency": "EUR"}
    with local_sites(tmp_path, *sites_config) as sites:
        targets = []
        for index, markup in enumerate(markups):
            site_rules = rules if markup == "plain" else None
            targets += await watch(
                database, frontier, sites.base(index), ["/p/2"], None, site_rules
            )
        async with running_crawler(frontier, crawl_settings, PriceWatchHandler(database)):
            for target_id in targets:
                await wait_for(lambda t=target_id: _history_is(database, t, [1002]), timeout=20)
