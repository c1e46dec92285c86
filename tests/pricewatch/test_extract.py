"""Reading prices out of pages: structured data first, then OpenGraph, then the site's rules."""

from __future__ import annotations

import json

import pytest

from agora.pricewatch.extract import Reading, read_page
from tests.crawler.testsite import product_page

URL = "https://shop.example/p/1"


@pytest.mark.parametrize("markup", ["jsonld", "microdata", "opengraph"])
def test_structured_markup_is_read(markup: str) -> None:
    reading = read_page(product_page(markup, "Shirt", 1999, 20_000).encode(), URL)
    in_stock = None if markup == "opengraph" else True
    assert reading == Reading(1999, "EUR", in_stock)


def test_site_rules_read_plain_pages() -> None:
    page = product_page("plain", "Shirt", 1250, 0).encode()
    assert read_page(page, URL) is None
    assert read_page(page, URL, {"price": ".price::text"}) == Reading(1250, "EUR", None)
    rules = {"price": "//span[@class='price']", "currency": "GBP"}
    assert read_page(page, URL, rules) == Reading(1250, "GBP", None)


@pytest.mark.parametrize(
    ("price", "currency", "minor"),
    [("1.299,00", "EUR", 129900), ("1299", "JPY", 1299), ("12.345", "KWD", 12345)],
)
def test_prices_become_minor_units(price: str, currency: str, minor: int) -> None:
    data = {"@type": "Offer", "price": price, "priceCurrency": currency}
    page = f'<script type="application/ld+json">{json.dumps(data)}</script>'.encode()
    reading = read_page(page, URL)
    assert reading is not None
    assert (reading.price_amount, reading.currency) == (minor, currency)


def test_a_graph_and_out_of_stock_offers_are_read() -> None:
    data = {
        "@graph": [
            {"@type": "BreadcrumbList"},
            {
                "@type": ["Product"],
                "offers": [{"price": 5, "priceCurrency": "usd", "availability": "OutOfStock"}],
            },
        ]
    }
    page = f'<script type="application/ld+json">{json.dumps(data)}</script>'.encode()
    assert read_page(page, URL) == Reading(500, "USD", False)


def test_broken_json_ld_falls_back_to_extruct() -> None:
    page = (
        b'<html><head><script type="application/ld+json">// a comment\n'
        b'{"@type": "Offer", "price": "3.50", "priceCurrency": "EUR"}</script></head></html>'
    )
    assert read_page(page, URL) == Reading(350, "EUR", None)
