"""The page as served: its hooks, its strict CSP, its language, and the chart library taken from
the installed plotly package."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest

from agora.dashboard import assets
from agora.dashboard.i18n import choose_language

PANELS = {
    "signin", "session", "requests", "errors", "latency", "orders", "revenue", "flash_sales",
    "routes", "status_codes", "top_paths", "top_ips", "payments", "queues", "alerts", "tail",
    "crawl", "pricewatch",
}  # fmt: skip
METRICS = {
    "requests_per_second", "error_rate", "p95_ms", "orders_per_minute", "revenue_per_minute",
    "flash_sale_remaining", "crawl_pages_per_second",
}  # fmt: skip


async def test_the_page_carries_every_hook_and_a_strict_policy(client: httpx.AsyncClient) -> None:
    response = await client.get("/dashboard")

    assert response.status_code == 200
    html = response.text
    assert set(re.findall(r'data-panel="([a-z_]+)"', html)) >= PANELS
    assert set(re.findall(r'data-metric="([a-z0-9_]+)"', html)) >= METRICS
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response.headers["content-security-policy"].split(";")
    )
    assert policy["script-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["default-src"] == "'none'"
    assert "<script>" not in html
    assert not re.search(r"<script(?![^>]*(src=|application/json))", html)
    assert not re.search(r"https?://", html.replace("http://www.w3.org", ""))


@pytest.mark.parametrize(
    ("query", "cookie", "header", "expected"),
    [
        (None, None, "zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        (None, None, "fr-FR, en;q=0.5, zh;q=0.7", "zh"),
        (None, None, "de-DE", "en"),
        (None, "zh", "en-GB", "zh"),
        ("en", "zh", "zh-CN", "en"),
        ("xx", None, None, "en"),
    ],
)
def test_the_language_follows_the_choice_then_the_browser(
    query: str | None, cookie: str | None, header: str | None, expected: str
) -> None:
    assert choose_language(query, cookie, header) == expected


async def test_labels_follow_accept_language_and_the_switch_sticks(
    client: httpx.AsyncClient,
) -> None:
    chinese = await client.get("/dashboard", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert "运营看板" in chinese.text
    assert '<html lang="zh-CN">' in chinese.text

    switched = await client.get("/dashboard?lang=en", headers={"Accept-Language": "zh-CN"})
    assert "Agora operations" in switched.text
    assert switched.cookies.get("agora_lang") == "en"
    again = await client.get("/dashboard", headers={"Accept-Language": "zh-CN"})
    assert "Agora operations" in again.text


async def test_the_chart_library_is_served_from_the_installed_package(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/dashboard")
    src = re.search(r'<script src="(/dashboard/vendor/[^"]+)"', page.text)
    assert src is not None

    library = await client.get(src.group(1))

    assert library.status_code == 200
    assert library.headers["content-type"].startswith("text/javascript")
    assert "immutable" in library.headers["cache-control"]
    installed = Path(assets.chart_library_path())
    assert "site-packages" in str(installed) or "dist-packages" in str(installed)
    assert library.content == await asyncio.to_thread(installed.read_bytes)


async def test_the_modules_are_served_as_javascript(client: httpx.AsyncClient) -> None:
    for name in ("main.js", "feed.js", "auth.js", "panels/orders.js", "dashboard.css"):
        response = await client.get(f"/dashboard/static/{name}")
        assert response.status_code == 200, name
    module = await client.get("/dashboard/static/main.js")
    assert module.headers["content-type"].startswith("text/javascript")
    assert (await client.get("/dashboard/static/../api.py")).status_code == 404
