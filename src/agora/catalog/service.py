"""Catalog rules: staff writes, cached buyer reads, and the seams other domains use.

**Stock seam.** The catalog stands below inventory, so it cannot ask inventory whether a variant
can be bought. Inventory registers a ``StockLookup`` (``(session, variant_ids) -> the ids in
stock``) when the app is composed, with ``register_stock_lookup`` in ``app.py``; until one is
registered every variant counts as in stock. The answer is part of cached product documents, so
inventory calls ``invalidate_product`` (after its transaction commits) whenever a variant's stock
crosses zero.

**Caching.** Buyer reads are served from the two-level cache (``core/cache.py``) as ready
response bodies with their ETag. Tags: ``catalog:product:<id>`` (one product's document),
``catalog:slug:<slug>`` (which product a slug names), ``catalog:lists`` (every list and search
page) and ``catalog:categories`` (category documents, and product documents, which embed their
category). Every write invalidates the tags it affects once its transaction commits.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import re
import secrets
import unicodedata
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from pydantic import BaseModel
from redis.asyncio import Redis
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from agora.catalog import repository
from agora.catalog.models import Category, Product, ProductStatus, ProductVariant
from agora.catalog.repository import PageRequest, ProductFilter, WeightedText
from agora.catalog.schemas import (
    CategoryCreate,
    CategoryDetail,
    CategoryList,
    CategoryOut,
    CategoryUpdate,
    ProductCreate,
    ProductDetail,
    ProductPage,
    ProductQuery,
    ProductSummary,
    ProductUpdate,
    VariantCreate,
    VariantOut,
    VariantUpdate,
)
from agora.catalog.search import (
    attribute_text,
    ensure_segmenter,
    for_index,
    for_query,
    plain_text,
    sanitise_html,
)
from agora.core.cache import TwoLevelCache, invalidate, invalidate_after_commit
from agora.core.db import Database
from agora.core.errors import AgoraError, Conflict, Forbidden, NotFound, ValidationFailed
from agora.core.money import Money
from agora.core.pagination import decode_cursor, encode_cursor
from agora.core.serialization import dumps

StockLookup = Callable[[AsyncSession, Sequence[uuid.UUID]], Awaitable[set[uuid.UUID]]]
LISTS_TAG = "catalog:lists"
CATEGORIES_TAG = "catalog:categories"
_stock_lookup: StockLookup | None = None
T = TypeVar("T")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_FOREIGN_KEY_VIOLATION = "23503"


@dataclass(frozen=True)
class Document:
    """A response body ready to send, its entity tag, and the cache tags it depends on."""

    body: bytes
    etag: str
    tags: tuple[str, ...] = ()


# --- seams for other domains ------------------------------------------------------------------


def register_stock_lookup(lookup: StockLookup | None) -> None:
    """Tell the catalog which variants are in stock (inventory registers it; None resets)."""
    global _stock_lookup
    _stock_lookup = lookup


async def invalidate_product(redis: Redis, product_id: uuid.UUID) -> None:
    """Drop a product's cached documents in every process (call after your change commits)."""
    await invalidate(redis, [_product_tag(product_id), LISTS_TAG])


async def _in_stock(session: AsyncSession, variant_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    if not variant_ids:
        return set()
    if _stock_lookup is None:
        return set(variant_ids)
    return await _stock_lookup(session, variant_ids)


def _product_tag(product_id: uuid.UUID) -> str:
    return f"catalog:product:{product_id}"


def _slug_tag(slug: str) -> str:
    return f"catalog:slug:{slug}"


# --- buyer reads (cached) ---------------------------------------------------------------------


async def product_document(cache: TwoLevelCache, database: Database, id_or_slug: str) -> Document:
    """A published product's detail by id or slug, from the cache; 404 otherwise."""
    product_id = _as_uuid(id_or_slug)
    lookup_tags: tuple[str, ...] = ()
    if product_id is None:
        slug = id_or_slug.lower()
        lookup_tags = (_slug_tag(slug),)
        found = await cache.get_or_load(
            _slug_tag(slug), [_slug_tag(slug)], lambda: _load_slug(database, slug)
        )
        if found is None:
            raise NotFound("No such product.", code="product_not_found")
        product_id = uuid.UUID(found)
    tags = (_product_tag(product_id), CATEGORIES_TAG)
    entry = await cache.get_or_load(
        _product_tag(product_id), tags, lambda: _load_product(database, product_id)
    )
    if entry is None:
        raise NotFound("No such product.", code="product_not_found")
    return _document(entry, (*tags, *lookup_tags))


async def product_page_document(
    cache: TwoLevelCache, database: Database, query: ProductQuery
) -> Document:
    """One page of published products (search, filters, order), from the cache."""
    if query.status != ProductStatus.PUBLISHED:
        raise Forbidden("Only staff may list unpublished products.", code="staff_only")
    page = _page_request(query)
    digest = hashlib.blake2b(dumps(query.model_dump(mode="json")), digest_size=16).hexdigest()
    entry = await cache.get_or_load(
        f"catalog:list:{digest}", [LISTS_TAG], lambda: _load_page(database, query, page)
    )
    return _document(entry, (LISTS_TAG,))


async def staff_product_page_document(database: Database, query: ProductQuery) -> Document:
    """One page of products in any status (drafts too), read fresh (never cached): what staff
    see."""
    return _document(await _load_page(database, query, _page_request(query)))


def _page_request(query: ProductQuery) -> PageRequest:
    """The order, position and size of a list; 422 for a price range or cursor that cannot be."""
    low, high = query.min_price, query.max_price
    if low is not None and high is not None and low > high:
        raise ValidationFailed("min_price exceeds max_price.", code="invalid_price_range")
    sort = query.effective_sort
    if sort == "relevance" and not query.q:
        sort = "newest"
    after = decode_cursor(query.cursor, sort, partial(_cursor_key, sort)) if query.cursor else None
    return PageRequest(sort, after, query.limit)


async def categories_document(cache: TwoLevelCache, database: Database) -> Document:
    """Every category, parents first, from the cache."""
    entry = await cache.get_or_load(
        "catalog:categories", [CATEGORIES_TAG], lambda: _load_categories(database)
    )
    return _document(entry, (CATEGORIES_TAG,))


async def category_document(cache: TwoLevelCache, database: Database, slug: str) -> Document:
    """A category with its breadcrumbs and children, from the cache; 404 if unknown."""
    entry = await cache.get_or_load(
        f"catalog:category:{slug}", [CATEGORIES_TAG], lambda: _load_category(database, slug)
    )
    if entry is None:
        raise NotFound("No such category.", code="category_not_found")
    return _document(entry, (CATEGORIES_TAG,))


async def staff_product_document(database: Database, id_or_slug: str) -> Document:
    """Any product, drafts included, read fresh (never cached): what staff see."""
    async with database.sessionmaker() as session:
        product_id = _as_uuid(id_or_slug)
        if product_id is None:
            product_id = await repository.product_id_by_slug(session, id_or_slug.lower())
        product = None
        if product_id is not None:
            product = await repository.product_detail(session, product_id, published_only=False)
        if product is None:
            raise NotFound("No such product.", code="product_not_found")
        return _document(_entry(await _detail(session, product)))


async def _load_slug(database: Database, slug: str) -> str | None:
    async with database.sessionmaker() as session:
        product_id = await repository.product_id_by_slug(session, slug)
    return str(product_id) if product_id else None


async def _load_product(database: Database, product_id: uuid.UUID) -> dict[str, str] | None:
    async with database.sessionmaker() as session:
        product = await repository.product_detail(session, product_id, published_only=True)
        if product is None:
            return None
        return _entry(await _detail(session, product))


async def _load_page(database: Database, query: ProductQuery, page: PageRequest) -> dict[str, str]:
    search = None
    if query.q:
        await ensure_segmenter(query.q)
        search = for_query(query.q)
        if search.is_empty:
            return _entry(ProductPage(items=[], next_cursor=None))
    where = ProductFilter(
        search=search,
        status=query.status,
        category_slug=query.category,
        min_price=query.min_price,
        max_price=query.max_price,
        attributes={name: _attribute_candidates(value) for name, value in query.attributes.items()},
    )
    async with database.sessionmaker() as session:
        rows = await repository.list_products(session, where, page)
        rows, more = rows[: page.limit], len(rows) > page.limit
        variant_ids = [variant.id for product, _ in rows for variant in product.variants]
        in_stock = await _in_stock(session, variant_ids)
    items = [_summary(product, in_stock) for product, _ in rows]
    next_cursor = encode_cursor(page.sort, *rows[-1][1]) if more else None
    return _entry(ProductPage(items=items, next_cursor=next_cursor))


async def _load_categories(database: Database) -> dict[str, str]:
    async with database.sessionmaker() as session:
        categories = await repository.all_categories(session)
    return _entry(CategoryList(items=[CategoryOut.model_validate(c) for c in categories]))


async def _load_category(database: Database, slug: str) -> dict[str, str] | None:
    async with database.sessionmaker() as session:
        category = await repository.category_by_slug(session, slug)
        if category is None:
            return None
        ancestors = await repository.category_ancestors(session, category.id)
        children = await repository.category_children(session, category.id)
    detail = CategoryDetail(
        **CategoryOut.model_validate(category).model_dump(),
        ancestors=[CategoryOut.model_validate(c) for c in ancestors],
        children=[CategoryOut.model_validate(c) for c in children],
    )
    return _entry(detail)


def _entry(model: BaseModel) -> dict[str, str]:
    body = model.model_dump_json()
    etag = '"' + hashlib.blake2b(body.encode(), digest_size=12).hexdigest() + '"'
    return {"body": body, "etag": etag}


def _document(entry: dict[str, str], tags: tuple[str, ...] = ()) -> Document:
    return Document(body=entry["body"].encode(), etag=entry["etag"], tags=tags)


def _as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _attribute_candidates(value: str) -> list[Any]:
    """A query-string value, and the JSON number or boolean it may stand for."""
    candidates: list[Any] = [value]
    if value in ("true", "false"):
        candidates.append(value == "true")
    elif _NUMBER.match(value):
        candidates.append(float(value) if "." in value else int(value))
    return candidates


# --- shaping ----------------------------------------------------------------------------------


def _variant_out(variant: ProductVariant, in_stock: set[uuid.UUID]) -> VariantOut:
    return VariantOut(
        id=variant.id,
        sku=variant.sku,
        price=Money(amount=variant.price_amount, currency=variant.currency),
        attributes=variant.attributes,
        weight_grams=variant.weight_grams,
        in_stock=variant.id in in_stock,
    )


def _summary(product: Product, in_stock: set[uuid.UUID]) -> ProductSummary:
    cheapest = min(product.variants, key=lambda v: v.price_amount, default=None)
    return ProductSummary(
        id=product.id,
        slug=product.slug,
        name=product.name,
        status=product.status,
        category_id=product.category_id,
        images=product.images,
        price_from=Money(amount=cheapest.price_amount, currency=cheapest.currency)
        if cheapest
        else None,
        variants=[_variant_out(variant, in_stock) for variant in product.variants],
        created_at=product.created_at,
        updated_at=product.updated_at,
    )


async def _detail(session: AsyncSession, product: Product) -> ProductDetail:
    in_stock = await _in_stock(session, [variant.id for variant in product.variants])
    return ProductDetail(
        **_summary(product, in_stock).model_dump(),
        description=product.description,
        category=CategoryOut.model_validate(product.category) if product.category else None,
    )


# --- staff writes -----------------------------------------------------------------------------


async def create_category(session: AsyncSession, redis: Redis, data: CategoryCreate) -> CategoryOut:
    """Add a category under ``parent_id`` (or at the root)."""
    slug = data.slug or await _free_slug(session, data.name, repository.category_slug_taken)
    category = Category(
        name=data.name, slug=slug, parent_id=data.parent_id, description=data.description
    )
    session.add(category)
    await _guarded(session.flush(), _CATEGORY_ERRORS)
    invalidate_after_commit(session, redis, [CATEGORIES_TAG, LISTS_TAG])
    return CategoryOut.model_validate(category)


async def update_category(
    session: AsyncSession, redis: Redis, category_id: uuid.UUID, data: CategoryUpdate
) -> CategoryOut:
    """Rename, re-slug, describe or move a category; moving it below itself is refused."""
    changes = _changes(data, nullable={"parent_id"})
    if "parent_id" in changes:
        await repository.lock_category_tree(session)
    category = await repository.category_by_id(session, category_id)
    if category is None:
        raise NotFound("No such category.", code="category_not_found")
    parent_id = changes.get("parent_id")
    if parent_id is not None:
        above = await repository.category_ancestors(session, parent_id)
        if parent_id == category.id or category.id in {c.id for c in above}:
            raise ValidationFailed("A category cannot move below itself.", code="category_cycle")
    for name, value in changes.items():
        setattr(category, name, value)
    await _guarded(session.flush(), _CATEGORY_ERRORS)
    await session.refresh(category)
    if "name" in changes:  # its products are found by the category's name
        for product_id in await repository.product_ids_in_category(session, category.id):
            await _refresh_derived_columns(session, product_id)
    invalidate_after_commit(session, redis, [CATEGORIES_TAG, LISTS_TAG])
    return CategoryOut.model_validate(category)


async def delete_category(session: AsyncSession, redis: Redis, category_id: uuid.UUID) -> None:
    """Delete a category without children; its products keep existing, uncategorised."""
    deleted = await _guarded(
        repository.delete_category(session, category_id), _CATEGORY_DELETE_ERRORS
    )
    if not deleted:
        raise NotFound("No such category.", code="category_not_found")
    invalidate_after_commit(session, redis, [CATEGORIES_TAG, LISTS_TAG])


async def create_product(session: AsyncSession, redis: Redis, data: ProductCreate) -> ProductDetail:
    """Add a product with its variants; a published one needs at least one variant."""
    if data.status == ProductStatus.PUBLISHED and not data.variants:
        raise ValidationFailed("A published product needs a variant.", code="no_variants")
    product = Product(
        name=data.name,
        slug=data.slug or await _free_slug(session, data.name, repository.product_slug_taken),
        description=sanitise_html(data.description),
        category_id=data.category_id,
        status=data.status,
        images=[str(url) for url in data.images],
        variants=[_new_variant(variant) for variant in data.variants],
    )
    session.add(product)
    await _guarded(session.flush(), _PRODUCT_ERRORS)
    return await _after_product_write(session, redis, product.id, {product.slug})


async def update_product(
    session: AsyncSession, redis: Redis, product_id: uuid.UUID, data: ProductUpdate
) -> ProductDetail:
    """Change a product's fields; publishing needs at least one variant."""
    product = await _locked_product(session, product_id)
    slugs = {product.slug}
    changes = _changes(data, nullable={"category_id"})
    if "description" in changes:
        changes["description"] = sanitise_html(changes["description"])
    if "images" in changes:
        changes["images"] = [str(url) for url in changes["images"]]
    for name, value in changes.items():
        setattr(product, name, value)
    if product.status == ProductStatus.PUBLISHED and not product.variants:
        raise ValidationFailed("A published product needs a variant.", code="no_variants")
    await _guarded(session.flush(), _PRODUCT_ERRORS)
    return await _after_product_write(session, redis, product.id, slugs | {product.slug})


async def delete_product(session: AsyncSession, redis: Redis, product_id: uuid.UUID) -> None:
    """Delete a product and its variants (refused while orders refer to them)."""
    product = await _locked_product(session, product_id)
    await _guarded(repository.delete_product(session, product.id), _IN_USE_ERRORS)
    _invalidate_product_after_commit(session, redis, product.id, {product.slug})


async def add_variant(
    session: AsyncSession, redis: Redis, product_id: uuid.UUID, data: VariantCreate
) -> VariantOut:
    """Add a variant to a product."""
    product = await _locked_product(session, product_id)
    variant = _new_variant(data)
    product.variants.append(variant)
    await _guarded(session.flush(), _PRODUCT_ERRORS)
    await _after_product_write(session, redis, product.id, {product.slug})
    return _variant_out(variant, await _in_stock(session, [variant.id]))


async def update_variant(
    session: AsyncSession,
    redis: Redis,
    product_id: uuid.UUID,
    variant_id: uuid.UUID,
    data: VariantUpdate,
) -> VariantOut:
    """Change a variant's SKU, price, attributes or weight."""
    product = await _locked_product(session, product_id)
    variant = _variant_of(product, variant_id)
    for name, value in _changes(data, nullable=set()).items():
        if name == "price":
            variant.price_amount, variant.currency = value["amount"], value["currency"]
        else:
            setattr(variant, name, value)
    await _guarded(session.flush(), _PRODUCT_ERRORS)
    await _after_product_write(session, redis, product.id, {product.slug})
    return _variant_out(variant, await _in_stock(session, [variant.id]))


async def delete_variant(
    session: AsyncSession, redis: Redis, product_id: uuid.UUID, variant_id: uuid.UUID
) -> None:
    """Delete a variant; a published product keeps at least one."""
    product = await _locked_product(session, product_id)
    variant = _variant_of(product, variant_id)
    if product.status == ProductStatus.PUBLISHED and len(product.variants) == 1:
        raise Conflict("A published product keeps at least one variant.", code="last_variant")
    await _guarded(repository.delete_variant(session, variant.id), _IN_USE_ERRORS)
    await _after_product_write(session, redis, product.id, {product.slug})


async def _locked_product(session: AsyncSession, product_id: uuid.UUID) -> Product:
    product = await repository.lock_product(session, product_id)
    if product is None:
        raise NotFound("No such product.", code="product_not_found")
    return product


def _variant_of(product: Product, variant_id: uuid.UUID) -> ProductVariant:
    for variant in product.variants:
        if variant.id == variant_id:
            return variant
    raise NotFound("No such variant.", code="variant_not_found")


def _new_variant(data: VariantCreate) -> ProductVariant:
    return ProductVariant(
        sku=data.sku,
        price_amount=data.price.amount,
        currency=data.price.currency,
        attributes=data.attributes,
        weight_grams=data.weight_grams,
    )


async def _after_product_write(
    session: AsyncSession, redis: Redis, product_id: uuid.UUID, slugs: set[str]
) -> ProductDetail:
    """Recompute the derived columns, schedule invalidation, and answer the fresh detail."""
    await _refresh_derived_columns(session, product_id)
    _invalidate_product_after_commit(session, redis, product_id, slugs)
    product = await repository.product_detail(session, product_id, published_only=False)
    assert product is not None
    return await _detail(session, product)


async def _refresh_derived_columns(session: AsyncSession, product_id: uuid.UUID) -> None:
    """Recompute a product's search vector (name, category, attributes, description) and
    cheapest price from its current rows."""
    product = await repository.product_detail(session, product_id, published_only=False)
    assert product is not None
    category = product.category.name if product.category is not None else ""
    attributes = [value for variant in product.variants for value in variant.attributes.values()]
    await ensure_segmenter(product.name, category, product.description, attribute_text(attributes))
    document = await asyncio.to_thread(
        _search_document, product.name, category, product.description, attributes
    )
    await repository.refresh_derived_columns(session, product_id, document)


def _search_document(
    name: str, category: str, description: str, attributes: Iterable[object]
) -> list[WeightedText]:
    return [
        WeightedText(for_index(name), "A"),
        WeightedText(for_index(f"{category} {attribute_text(attributes)}"), "B"),
        WeightedText(for_index(plain_text(description)), "C"),
    ]


def _invalidate_product_after_commit(
    session: AsyncSession, redis: Redis, product_id: uuid.UUID, slugs: Iterable[str]
) -> None:
    tags = [_product_tag(product_id), LISTS_TAG, *(_slug_tag(slug) for slug in slugs)]
    invalidate_after_commit(session, redis, tags)


def _changes(data: BaseModel, *, nullable: set[str]) -> dict[str, Any]:
    """The fields the caller sent; null is refused for fields that cannot be empty."""
    changes = {name: getattr(data, name) for name in data.model_fields_set}
    for name, value in changes.items():
        if value is None and name not in nullable:
            raise ValidationFailed(f"{name} cannot be null.", code="null_not_allowed")
        if isinstance(value, BaseModel):
            changes[name] = value.model_dump()
    return changes


async def _free_slug(
    session: AsyncSession, name: str, taken: Callable[[AsyncSession, str], Awaitable[bool]]
) -> str:
    """A slug from ``name`` (ASCII words), with a random suffix if taken or empty."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    base = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:80].strip("-")
    if base and not await taken(session, base):
        return base
    return f"{base or 'item'}-{secrets.token_hex(4)}"


ErrorTable = dict[str, tuple[type[AgoraError], str, str]]
_PRODUCT_ERRORS: ErrorTable = {
    "uq_products_slug": (Conflict, "Another product has this slug.", "slug_taken"),
    "uq_product_variants_sku": (Conflict, "Another variant has this SKU.", "sku_taken"),
    "fk_products_category_id_categories": (
        ValidationFailed, "No such category.", "unknown_category"
    ),
}  # fmt: skip
_CATEGORY_ERRORS: ErrorTable = {
    "uq_categories_slug": (Conflict, "Another category has this slug.", "slug_taken"),
    "fk_categories_parent_id_categories": (
        ValidationFailed, "No such parent category.", "unknown_parent"
    ),
}  # fmt: skip
_CATEGORY_DELETE_ERRORS: ErrorTable = {
    "fk_categories_parent_id_categories": (
        Conflict, "The category has children; move or delete them first.", "category_has_children"
    ),
}  # fmt: skip
_IN_USE_ERRORS: ErrorTable = {}


async def _guarded(operation: Awaitable[T], errors: ErrorTable) -> T:
    """Run a write, turning constraint violations into the caller's errors (409 or 422)."""
    try:
        return await operation
    except IntegrityError as exc:
        cause = exc.orig.__cause__ if exc.orig is not None else None
        constraint = getattr(cause, "constraint_name", None)
        if constraint in errors:
            error_type, detail, code = errors[constraint]
            raise error_type(detail, code=code) from exc
        if getattr(cause, "sqlstate", None) == _FOREIGN_KEY_VIOLATION:
            raise Conflict("Something still refers to this.", code="in_use") from exc
        raise


def _cursor_key(sort: str, value: Any, row_id: Any) -> tuple[Any, uuid.UUID]:
    """The typed (sort key, id) a product list cursor holds; ValueError for a wrong type."""
    return _typed_sort_value(sort, value), uuid.UUID(str(row_id))


def _typed_sort_value(sort: str, value: Any) -> Any:
    if sort == "newest" and isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    if sort in ("price_asc", "price_desc") and type(value) is int:
        return value
    if sort == "name" and isinstance(value, str):
        return value
    if sort == "relevance" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise ValueError("cursor key of the wrong type")
