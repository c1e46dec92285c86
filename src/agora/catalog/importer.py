"""Bulk import of products from CSV, one variant per row, each row all or nothing.

Columns: ``product_slug, name, description, category, status, images, sku, price_amount,
currency, attributes, weight_grams``. ``category`` is a category slug, ``images`` is separated by
``|``, ``attributes`` is a JSON object. The first row of a new ``product_slug`` creates the
product; each row adds its variant, or updates it when the SKU already belongs to that product.
Every row runs in its own savepoint: a rejected row leaves nothing behind and is reported with
its reason, and the rows before and after it still count.
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from redis.asyncio import Redis
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from agora.catalog import repository, service
from agora.catalog.schemas import ProductCreate, VariantCreate, VariantUpdate
from agora.core.errors import AgoraError
from agora.core.serialization import loads

COLUMNS = (
    "product_slug", "name", "description", "category", "status", "images",
    "sku", "price_amount", "currency", "attributes", "weight_grams",
)  # fmt: skip


@dataclass(frozen=True)
class RejectedRow:
    """A row that was not imported, and why."""

    line: int
    reason: str


@dataclass
class ImportReport:
    """What an import did."""

    imported: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file with a header line; refuses a file missing required columns."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = {"product_slug", "sku", "price_amount", "currency"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"missing columns: {', '.join(sorted(missing))}")
        return list(reader)


async def import_rows(
    session: AsyncSession,
    redis: Redis,
    rows: Iterable[dict[str, str]],
    on_row: Callable[[], None] = lambda: None,
) -> ImportReport:
    """Import each row in its own savepoint; the caller's unit of work commits the rest."""
    report = ImportReport()
    for line, row in enumerate(rows, start=2):
        try:
            async with session.begin_nested():
                await _import_row(session, redis, row)
            report.imported += 1
        except ValidationError as exc:
            report.rejected.append(RejectedRow(line, _first_error(exc)))
        except (AgoraError, ValueError) as exc:
            report.rejected.append(RejectedRow(line, str(exc)))
        except IntegrityError as exc:
            report.rejected.append(RejectedRow(line, f"conflicts with existing data: {exc.orig}"))
        on_row()
    return report


async def _import_row(session: AsyncSession, redis: Redis, row: dict[str, str]) -> None:
    variant = VariantCreate.model_validate(
        {
            "sku": _cell(row, "sku"),
            "price": {"amount": _integer(row, "price_amount"), "currency": _cell(row, "currency")},
            "attributes": _attributes(row),
            "weight_grams": _integer(row, "weight_grams", default=0),
        }
    )
    slug = _cell(row, "product_slug").lower()
    product_id = await repository.product_id_by_slug(session, slug)
    if product_id is None:
        await service.create_product(session, redis, await _new_product(session, row, variant))
        return
    existing = await repository.variant_by_sku(session, variant.sku)
    if existing is None:
        await service.add_variant(session, redis, product_id, variant)
    elif existing.product_id == product_id:
        changes = VariantUpdate(
            price=variant.price, attributes=variant.attributes, weight_grams=variant.weight_grams
        )
        await service.update_variant(session, redis, product_id, existing.id, changes)
    else:
        raise ValueError(f"SKU {variant.sku} belongs to another product")


async def _new_product(
    session: AsyncSession, row: dict[str, str], variant: VariantCreate
) -> ProductCreate:
    category_id: uuid.UUID | None = None
    if category_slug := _cell(row, "category"):
        category = await repository.category_by_slug(session, category_slug.lower())
        if category is None:
            raise ValueError(f"unknown category {category_slug!r}")
        category_id = category.id
    images = [url.strip() for url in _cell(row, "images").split("|") if url.strip()]
    return ProductCreate.model_validate(
        {
            "name": _cell(row, "name"),
            "slug": _cell(row, "product_slug"),
            "description": _cell(row, "description"),
            "category_id": category_id,
            "status": _cell(row, "status") or "published",
            "images": images,
            "variants": [variant.model_dump()],
        }
    )


def _cell(row: dict[str, str], column: str) -> str:
    return (row.get(column) or "").strip()


def _integer(row: dict[str, str], column: str, default: int | None = None) -> int:
    text = _cell(row, column)
    if not text and default is not None:
        return default
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{column} must be a whole number, got {text!r}") from None


def _attributes(row: dict[str, str]) -> Any:
    text = _cell(row, "attributes")
    if not text:
        return {}
    try:
        return loads(text)
    except ValueError:
        raise ValueError("attributes must be a JSON object") from None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]
