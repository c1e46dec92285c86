"""Reading a product page: its price (minor units and currency) and whether it is in stock.

Sources are tried in order, the first one naming a price wins: schema.org ``Product``/``Offer``
as JSON-LD, then as microdata (both through ``extruct``), then OpenGraph ``product:price`` tags,
then the site's own CSS or XPath rules (``parsel``). Most shops publish JSON-LD, so its script
elements are first found by a scan of the raw page (a script's text cannot contain
``</script``) and only a page without a usable one is parsed into a tree, once, for the other
sources: building the tree costs several times more than everything else. Price text is read by
``price-parser`` and turned into integer minor units of an ISO 4217 code.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import orjson
from extruct.jsonld import JsonLdExtractor
from extruct.opengraph import OpenGraphExtractor
from extruct.utils import parse_html
from extruct.w3cmicrodata import MicrodataExtractor
from parsel import Selector
from price_parser import Price
from w3lib.encoding import html_body_declared_encoding, http_content_type_encoding

_ZERO_DECIMALS = frozenset({"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG"})
_ZERO_DECIMALS |= frozenset({"RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"})
_THREE_DECIMALS = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})
_SYMBOLS = {"€": "EUR", "$": "USD", "US$": "USD", "£": "GBP", "¥": "CNY", "元": "CNY"}
_SYMBOLS |= {"円": "JPY", "₩": "KRW", "₹": "INR", "CHF": "CHF", "kr": "SEK", "zł": "PLN"}
_CODE = re.compile(r"^[A-Z]{3}$")
_PLAIN_NUMBER = re.compile(r"^\d+(\.\d+)?$")
_NOT_LETTERS = re.compile(r"[^a-z]")
_ONE = Decimal(1)
# The script's text runs to the first "</script": matched as runs of anything but "<", each "<"
# looked past only when "/script" does not follow it, where a lazy ".*?" would try the end at
# every byte (a quarter of the time it took).
_JSON_LD = re.compile(
    rb"<script[^>]*type\s*=\s*[\"']?application/ld\+json[\"']?[^>]*>"
    rb"([^<]*(?:<(?!/script)[^<]*)*)</script",
    re.IGNORECASE,
)

_IN_STOCK = ("instock", "limitedavailability", "onlineonly", "instoreonly", "available")
_OUT_OF_STOCK = ("outofstock", "soldout", "discontinued", "unavailable")
_OFFER_TYPES = frozenset({"Offer", "AggregateOffer"})
_OPENGRAPH_PRICE = ("product:price:amount", "og:price:amount")
_OPENGRAPH_CURRENCY = ("product:price:currency", "og:price:currency")


@dataclass(slots=True)
class Reading:
    """What a page says: a price in minor units of ``currency``, and availability if stated."""

    price_amount: int
    currency: str | None
    in_stock: bool | None


def read_page(
    body: bytes, url: str, rules: Mapping[str, str] | None = None, content_type: str = ""
) -> Reading | None:
    """The page's price and availability, or None when no source names a price."""
    for offer in _json_ld_offers(body):
        reading = _reading(offer.get("price"), offer.get("currency"), offer.get("availability"))
        if reading is not None:
            return reading
    encoding = (
        http_content_type_encoding(content_type) or html_body_declared_encoding(body) or "utf-8"
    )
    document = parse_html(body, encoding)
    for offer in _structured_offers(document, url):
        reading = _reading(offer.get("price"), offer.get("currency"), offer.get("availability"))
        if reading is not None:
            return reading
    reading = _opengraph(document)
    if reading is None and rules:
        reading = _by_rules(Selector(root=document), rules)
    return reading


def _json_ld_offers(body: bytes) -> Iterator[dict[str, Any]]:
    for match in _JSON_LD.finditer(body):
        try:
            data = orjson.loads(match.group(1))
        except orjson.JSONDecodeError:
            continue  # read leniently by extruct, once the page is parsed
        for item in _walk(data):
            yield from _offers_of(item)


def _structured_offers(document: Any, url: str) -> Iterator[dict[str, Any]]:
    for item in _walk(JsonLdExtractor().extract_items(document, base_url=url)):
        yield from _offers_of(item)
    for item in MicrodataExtractor().extract_items(document, url):
        yield from _offers_of(_flatten_microdata(item))


def _walk(items: Any, found: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Every JSON-LD object, looking inside lists and ``@graph`` (a list: a page has a few, and
    a generator per level cost more than the rest of reading them)."""
    found = [] if found is None else found
    if isinstance(items, list):
        for item in items:
            _walk(item, found)
    elif isinstance(items, dict):
        found.append(items)
        _walk(items.get("@graph"), found)
    return found


def _flatten_microdata(item: Any) -> Any:
    """A microdata item shaped like JSON-LD (``@type`` and its properties)."""
    if not isinstance(item, dict) or "properties" not in item:
        return item
    flat = {key: _flatten_microdata(value) for key, value in item["properties"].items()}
    flat["@type"] = item.get("type", "")
    return flat


def _types(item: dict[str, Any]) -> set[str]:
    kinds = item.get("@type", [])
    if isinstance(kinds, str):
        return {kinds.rsplit("/", 1)[-1]}
    kinds = kinds if isinstance(kinds, list) else [kinds]
    return {str(kind).rsplit("/", 1)[-1] for kind in kinds}


def _offers_of(item: dict[str, Any]) -> list[dict[str, Any]]:
    kinds = _types(item)
    if kinds & _OFFER_TYPES:
        return [
            {
                "price": item.get("price", item.get("lowPrice")),
                "currency": item.get("priceCurrency"),
                "availability": item.get("availability"),
            }
        ]
    if "Product" not in kinds:
        return []
    offers = item.get("offers", [])
    return [
        found
        for offer in (offers if isinstance(offers, list) else [offers])
        if isinstance(offer, dict)
        for found in _offers_of(offer if offer.get("@type") else {**offer, "@type": "Offer"})
    ]


def _opengraph(document: Any) -> Reading | None:
    properties: dict[str, str] = {}
    for item in OpenGraphExtractor().extract_items(document):
        for name, value in item.get("properties", []):
            properties.setdefault(name, value)
    price = next((properties[name] for name in _OPENGRAPH_PRICE if name in properties), None)
    currency = next((properties[name] for name in _OPENGRAPH_CURRENCY if name in properties), None)
    return _reading(price, currency, properties.get("product:availability"))


def _by_rules(selector: Selector, rules: Mapping[str, str]) -> Reading | None:
    values: dict[str, str | None] = {}
    for field in ("price", "currency", "availability"):
        rule = rules.get(field)
        if rule and field == "currency" and _CODE.match(rule):
            values[field] = rule
        elif rule:
            values[field] = _select(selector, rule)
    return _reading(values.get("price"), values.get("currency"), values.get("availability"))


def _select(selector: Selector, rule: str) -> str | None:
    """The text a CSS (``.price::text``) or XPath (``//span[@id='p']``) rule points at."""
    found = selector.xpath(rule) if rule.startswith(("/", "(")) else selector.css(rule)
    if not found:
        return None
    first = found[0]
    if isinstance(first.root, str):
        return first.root
    text: str | None = first.xpath("string()").get()
    return text


def _reading(price: Any, currency: Any, availability: Any) -> Reading | None:
    if price is None or isinstance(price, dict | list):
        return None
    text = str(price).strip()
    if _PLAIN_NUMBER.match(text):  # schema.org's form: digits, "." for decimals
        code = _currency_code(str(currency) if currency else None)
        return Reading(_plain_minor_units(text, code), code, _availability(availability))
    parsed = Price.fromstring(text, currency_hint=str(currency) if currency else None)
    amount, found_currency = parsed.amount, parsed.currency
    if amount is None or amount < 0:
        return None
    code = _currency_code(str(currency) if currency else found_currency)
    return Reading(_minor_units(amount, code), code, _availability(availability))


def _currency_code(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    if _CODE.match(value.upper()):
        return value.upper()
    return _SYMBOLS.get(value)


def _exponent(currency: str | None) -> int:
    return 0 if currency in _ZERO_DECIMALS else 3 if currency in _THREE_DECIMALS else 2


def _minor_units(amount: Decimal, currency: str | None) -> int:
    return int((amount * 10 ** _exponent(currency)).quantize(_ONE, rounding=ROUND_HALF_UP))


def _plain_minor_units(text: str, currency: str | None) -> int:
    """The minor units of a plain number (``_PLAIN_NUMBER``): its digits as they stand when its
    decimals fit the currency's (most prices), without a ``Decimal``."""
    whole, _, decimals = text.partition(".")
    exponent = _exponent(currency)
    if len(decimals) > exponent:
        return _minor_units(Decimal(text), currency)
    return int(whole + decimals.ljust(exponent, "0"))


def _availability(value: Any) -> bool | None:
    if not isinstance(value, str):
        return None
    letters = _NOT_LETTERS.sub("", value.lower().rsplit("/", 1)[-1])
    if letters.startswith(_OUT_OF_STOCK):
        return False
    if letters.startswith(_IN_STOCK):
        return True
    return None
