"""The demo catalog (deterministic, idempotent) and the CSV import (row by row, with reasons)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
from redis.asyncio import Redis
from sqlalchemy import func, select

from agora.catalog.demo import CATEGORIES, PRODUCTS_PER_CATEGORY, load_demo
from agora.catalog.importer import COLUMNS, import_rows
from agora.catalog.models import Product, ProductVariant
from agora.core.db import Database
from tests.support import ROOT

HEADER = ",".join(COLUMNS)


async def _count(database: Database, model: type[Product] | type[ProductVariant]) -> int:
    async with database.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_demo_loads_once_and_is_searchable(
    database: Database, redis: Redis, client: httpx.AsyncClient
) -> None:
    expected = len(CATEGORIES) * PRODUCTS_PER_CATEGORY
    assert await load_demo(database, redis) == expected
    variants = await _count(database, ProductVariant)
    assert await load_demo(database, redis) == 0
    assert await load_demo(database, redis, only_if_empty=True) == 0
    assert await _count(database, Product) == expected
    assert await _count(database, ProductVariant) == variants > expected

    phones = (await client.get("/api/v1/products", params={"q": "手机", "limit": 100})).json()
    assert phones["items"]
    phones_category = (await client.get("/api/v1/categories/phones")).json()["id"]
    assert all(  # by its name, or by its category's name ("Phones 手机")
        "手机" in item["name"] or item["category_id"] == phones_category for item in phones["items"]
    )
    english = (await client.get("/api/v1/products", params={"q": "running shoes"})).json()
    assert english["items"]
    in_electronics = await client.get("/api/v1/products", params={"category": "electronics"})
    assert len(in_electronics.json()["items"]) == 24


async def test_import_keeps_good_rows_and_reports_rejected_ones(
    database: Database, redis: Redis
) -> None:
    rows = [
        'mug,Blue Mug,<p>Nice</p>,,published,,MUG-1,1200,EUR,"{""color"": ""blue""}",300',
        "mug,,,,,,MUG-2,1300,EUR,,",
        "bad-price,Bad,,,published,,BAD-1,12.50,EUR,,",
        "bad-json,Bad,,,published,,BAD-2,100,EUR,{not json,",
        "bad-category,Bad,,nowhere,published,,BAD-3,100,EUR,,",
        "dupe,Dupe,,,published,,MUG-1,100,EUR,,",
        "bad-currency,Bad,,,published,,BAD-4,100,EURO,,",
        "lamp,台灯,,,draft,https://x.test/a.jpg|https://x.test/b.jpg,LAMP-1,5000,CNY,,",
    ]
    parsed = [dict(zip(COLUMNS, _split(row), strict=True)) for row in rows]
    async with database.unit_of_work() as session:
        report = await import_rows(session, redis, parsed)
    assert report.imported == 3
    reasons = {rejected.line: rejected.reason for rejected in report.rejected}
    assert sorted(reasons) == [4, 5, 6, 7, 8]
    assert "price_amount" in reasons[4]
    assert "JSON" in reasons[5]
    assert "unknown category" in reasons[6]
    assert "SKU" in reasons[7]
    assert "currency" in reasons[8]
    assert await _count(database, Product) == 2
    assert await _count(database, ProductVariant) == 3


def _split(row: str) -> list[str]:
    import csv

    return next(csv.reader([row]))


def test_import_command_prints_a_summary(tmp_path: Path, service_env: dict[str, str]) -> None:
    csv_file = tmp_path / "products.csv"
    csv_file.write_text(
        f"{HEADER}\n"
        "kettle,Electric Kettle,,,published,,KET-1,4900,EUR,,\n"
        "kettle2,Kettle Two,,,published,,KET-2,-5,EUR,,\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "agora", "import", "products", str(csv_file)],
        env={**service_env, "COLUMNS": "200"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "1 rows imported" in result.stderr
    assert "1 rejected" in result.stderr
    assert "price.amount" in result.stderr
