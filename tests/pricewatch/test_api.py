"""Price watch's staff API: sites, targets, discovery from sitemaps, target detail, undercuts."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from agora.core.db import Database
from agora.crawler.frontier import Frontier, UrlState
from agora.settings import Settings
from tests.crawler.sites import local_sites, min_gap
from tests.factories import Account, create_user, create_variant

SITE = {"base_url": "http://127.0.0.1:9/", "delay_ms": 200, "max_concurrency": 2}


async def test_a_site_is_created_once(client: httpx.AsyncClient, staff: Account) -> None:
    created = await client.post("/api/v1/pricewatch/sites", json=SITE, headers=staff.headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["host"] == "127.0.0.1:9"
    assert body["recrawl_min_s"] == 3600
    again = await client.post("/api/v1/pricewatch/sites", json=SITE, headers=staff.headers)
    assert again.status_code == 409
    assert again.json()["code"] == "site_exists"


async def test_bad_sites_are_refused(
    client: httpx.AsyncClient, staff: Account, database: Database, settings: Settings
) -> None:
    for body in (
        {"base_url": "ftp://example.com/files"},
        {**SITE, "max_concurrency": 0},
        {**SITE, "recrawl_min_s": 100, "recrawl_max_s": 10},
        {**SITE, "rules": {"price": ".p", "colour": ".c"}},
    ):
        answer = await client.post("/api/v1/pricewatch/sites", json=body, headers=staff.headers)
        assert answer.status_code == 422, (body, answer.text)
    buyer = await create_user(database, settings)
    answer = await client.post("/api/v1/pricewatch/sites", json=SITE, headers=buyer.headers)
    assert answer.status_code == 403


async def test_targets_one_or_many_are_queued_for_crawling(
    client: httpx.AsyncClient, staff: Account, database: Database, frontier: Frontier
) -> None:
    await client.post("/api/v1/pricewatch/sites", json=SITE, headers=staff.headers)
    variant_id = await create_variant(database, price=1500)
    one = await client.post(
        "/api/v1/pricewatch/targets",
        json={"url": "http://127.0.0.1:9/p/1?b=2&a=1#top", "variant_id": str(variant_id)},
        headers=staff.headers,
    )
    assert one.status_code == 201, one.text
    assert one.json()["url"] == "http://127.0.0.1:9/p/1?a=1&b=2"
    assert one.headers["Location"] == f"/api/v1/pricewatch/targets/{one.json()['id']}"
    many = await client.post(
        "/api/v1/pricewatch/targets",
        json=[{"url": "http://127.0.0.1:9/p/2"}, {"url": "http://127.0.0.1:9/p/1?a=1&b=2"}],
        headers=staff.headers,
    )
    assert many.status_code == 201
    items = many.json()["items"]
    assert items[1]["id"] == one.json()["id"]
    assert items[1]["variant_id"] == str(variant_id)
    detail = await client.get(f"/api/v1/pricewatch/targets/{items[0]['id']}", headers=staff.headers)
    assert detail.json()["state"] == UrlState.QUEUED
    assert detail.json()["history"] == []
    assert (await frontier.status(items[0]["url"])).state == UrlState.QUEUED


async def test_targets_of_unknown_sites_or_variants_are_refused(
    client: httpx.AsyncClient, staff: Account
) -> None:
    await client.post("/api/v1/pricewatch/sites", json=SITE, headers=staff.headers)
    unknown_site = await client.post(
        "/api/v1/pricewatch/targets",
        json={"url": "http://127.0.0.2:9/p/1"},
        headers=staff.headers,
    )
    assert unknown_site.status_code == 422
    assert unknown_site.json()["code"] == "unknown_site"
    unknown_variant = await client.post(
        "/api/v1/pricewatch/targets",
        json={"url": "http://127.0.0.1:9/p/1", "variant_id": str(uuid.uuid4())},
        headers=staff.headers,
    )
    assert unknown_variant.json()["code"] == "variant_not_found"
    missing = await client.get(f"/api/v1/pricewatch/targets/{uuid.uuid4()}", headers=staff.headers)
    assert missing.status_code == 404


async def test_discover_reads_sitemaps_and_adds_matching_pages(
    tmp_path: Path, client: httpx.AsyncClient, staff: Account
) -> None:
    with local_sites(tmp_path, {"robots": "", "pages": 5}) as sites:
        base = sites.base(0)
        site = {"base_url": base, "delay_ms": 0}
        created = await client.post("/api/v1/pricewatch/sites", json=site, headers=staff.headers)
        site_id = created.json()["id"]
        path = f"/api/v1/pricewatch/sites/{site_id}/discover"
        found = await client.post(path, json={"pattern": r"/p/\d+$"}, headers=staff.headers)
        assert found.status_code == 200, found.text
        assert found.json() == {"listed": 7, "matched": 5, "added": 5}
        again = await client.post(path, json={"pattern": r"/p/\d+$"}, headers=staff.headers)
        assert again.json() == {"listed": 7, "matched": 5, "added": 0}
        bad = await client.post(path, json={"pattern": "("}, headers=staff.headers)
        assert bad.status_code == 422


async def test_discover_obeys_robots_txt_and_the_hosts_delay(
    tmp_path: Path, client: httpx.AsyncClient, staff: Account
) -> None:
    robots = "User-agent: *\nDisallow: /sitemap-pages\nCrawl-delay: 0.3\n"
    with local_sites(tmp_path, {"robots": robots, "pages": 3}) as sites:
        created = await client.post(
            "/api/v1/pricewatch/sites",
            json={"base_url": sites.base(0), "delay_ms": 0},
            headers=staff.headers,
        )
        site_id = created.json()["id"]
        path = f"/api/v1/pricewatch/sites/{site_id}/discover"
        for added in (3, 0):
            found = await client.post(path, json={"pattern": "/p/"}, headers=staff.headers)
            assert found.json() == {"listed": 3, "matched": 3, "added": added}
        hits = sites.hits(0)
    assert [hit.path for hit in hits] == [
        "/robots.txt",
        *["/sitemap.xml", "/sitemap-products.xml"] * 2,
    ]
    assert min_gap(hits) >= 0.3 - 0.005


async def test_discover_of_a_site_whose_robots_txt_fails_is_a_503(
    tmp_path: Path, client: httpx.AsyncClient, staff: Account
) -> None:
    with local_sites(tmp_path, {"robots": 503, "pages": 3}) as sites:
        site = {"base_url": sites.base(0), "delay_ms": 0}
        created = await client.post("/api/v1/pricewatch/sites", json=site, headers=staff.headers)
        path = f"/api/v1/pricewatch/sites/{created.json()['id']}/discover"
        for _ in range(2):
            refused = await client.post(path, json={"pattern": "/p/"}, headers=staff.headers)
            assert refused.status_code == 503, refused.text
            assert refused.json()["code"] == "site_unavailable"
        hits = sites.hits(0)
    # the second call finds the host paused: it asks nothing, and says when to come back
    assert [hit.path for hit in hits] == ["/robots.txt"]
    assert int(refused.headers["Retry-After"]) > 0


async def test_discovery_adds_a_sitemap_of_more_pages_than_one_statement_may_bind(
    tmp_path: Path, client: httpx.AsyncClient, staff: Account
) -> None:
    pages = 9_000  # four parameters a page: 36,000, past PostgreSQL's 32,767 per statement
    with local_sites(tmp_path, {"robots": "", "pages": pages}) as sites:
        created = await client.post(
            "/api/v1/pricewatch/sites",
            json={"base_url": sites.base(0), "delay_ms": 0},
            headers=staff.headers,
        )
        path = f"/api/v1/pricewatch/sites/{created.json()['id']}/discover"
        found = await client.post(path, json={"pattern": r"/p/\d+$"}, headers=staff.headers)
        assert found.status_code == 200, found.text[:500]
        assert found.json() == {"listed": pages + 2, "matched": pages, "added": pages}
