"""Every query on the catalog's tables."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Double,
    Select,
    delete,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from agora.catalog.models import Category, Product, ProductStatus, ProductVariant
from agora.catalog.search import SearchText

_CATEGORY_TREE_LOCK = 0x6361745F74726565  # one advisory lock serialises edits of the tree
_PUBLISHED = Product.status == ProductStatus.PUBLISHED
_ENGLISH: ColumnElement[Any] = literal_column("'english'::regconfig")
_SIMPLE: ColumnElement[Any] = literal_column("'simple'::regconfig")
_WEIGHTS = {weight: f"'{weight}'::\"char\"" for weight in "ABCD"}


@dataclass(frozen=True)
class WeightedText:
    """One field of a product's search document and its weight (A is the strongest)."""

    text: SearchText
    weight: str


@dataclass(frozen=True)
class ProductFilter:
    """What a product list is narrowed to; every field is optional."""

    search: SearchText | None = None
    status: ProductStatus = ProductStatus.PUBLISHED
    category_slug: str | None = None
    min_price: int | None = None
    max_price: int | None = None
    attributes: dict[str, list[Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class PageRequest:
    """The order of a list, where the previous page ended, and the page size."""

    sort: str
    after: tuple[Any, uuid.UUID] | None
    limit: int


# --- categories -------------------------------------------------------------------------------


async def all_categories(session: AsyncSession) -> Sequence[Category]:
    """Every category, parents before children (by depth, then name)."""
    tree = (
        select(Category.id, literal(0).label("depth"))
        .where(Category.parent_id.is_(None))
        .cte("tree", recursive=True)
    )
    tree = tree.union_all(
        select(Category.id, (tree.c.depth + 1).label("depth")).join(
            tree, Category.parent_id == tree.c.id
        )
    )
    stmt = (
        select(Category).join(tree, tree.c.id == Category.id).order_by(tree.c.depth, Category.name)
    )
    return (await session.scalars(stmt)).all()


async def category_by_slug(session: AsyncSession, slug: str) -> Category | None:
    """The category with this slug."""
    return await session.scalar(select(Category).where(Category.slug == slug))


async def category_by_id(session: AsyncSession, category_id: uuid.UUID) -> Category | None:
    """The category with this id."""
    return await session.get(Category, category_id)


async def category_ancestors(session: AsyncSession, category_id: uuid.UUID) -> list[Category]:
    """The categories above this one, root first (itself excluded)."""
    up = (
        select(Category.parent_id.label("id"), literal(1).label("depth"))
        .where(Category.id == category_id)
        .cte("up", recursive=True)
    )
    up = up.union_all(select(Category.parent_id, (up.c.depth + 1)).join(up, Category.id == up.c.id))
    stmt = select(Category).join(up, up.c.id == Category.id).order_by(up.c.depth.desc())
    return list((await session.scalars(stmt)).all())


async def category_children(session: AsyncSession, category_id: uuid.UUID) -> Sequence[Category]:
    """The direct children of a category, by name."""
    stmt = select(Category).where(Category.parent_id == category_id).order_by(Category.name)
    return (await session.scalars(stmt)).all()


async def lock_category_tree(session: AsyncSession) -> None:
    """Serialise changes of the tree's shape until the transaction ends (no cycles by race)."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CATEGORY_TREE_LOCK})


async def category_slug_taken(session: AsyncSession, slug: str) -> bool:
    """Whether a category already has this slug."""
    return bool(await session.scalar(select(exists().where(Category.slug == slug))))


async def delete_category(session: AsyncSession, category_id: uuid.UUID) -> bool:
    """Delete a category; False if there was none."""
    result = await session.execute(
        delete(Category).where(Category.id == category_id).returning(Category.id)
    )
    return result.first() is not None


# --- products ---------------------------------------------------------------------------------


async def lock_product(session: AsyncSession, product_id: uuid.UUID) -> Product | None:
    """The product, row-locked until the transaction ends, with its variants."""
    stmt = (
        select(Product)
        .where(Product.id == product_id)
        .options(selectinload(Product.variants))
        .with_for_update(of=Product)
        .execution_options(populate_existing=True)
    )
    return await session.scalar(stmt)


async def product_detail(
    session: AsyncSession, product_id: uuid.UUID, *, published_only: bool
) -> Product | None:
    """A product with its category and variants, in two statements."""
    stmt = (
        select(Product)
        .where(Product.id == product_id)
        .options(joinedload(Product.category), selectinload(Product.variants))
        .execution_options(populate_existing=True)
    )
    if published_only:
        stmt = stmt.where(_PUBLISHED)
    return await session.scalar(stmt)


async def product_ids_in_category(session: AsyncSession, category_id: uuid.UUID) -> list[uuid.UUID]:
    """The products filed directly in a category."""
    stmt = select(Product.id).where(Product.category_id == category_id).order_by(Product.id)
    return list(await session.scalars(stmt))


async def product_id_by_slug(session: AsyncSession, slug: str) -> uuid.UUID | None:
    """The id of the product with this slug."""
    return await session.scalar(select(Product.id).where(Product.slug == slug))


async def any_product(session: AsyncSession) -> bool:
    """Whether the catalog has any product at all."""
    return bool(await session.scalar(select(exists().select_from(Product))))


async def product_slug_taken(session: AsyncSession, slug: str) -> bool:
    """Whether a product already has this slug."""
    return bool(await session.scalar(select(exists().where(Product.slug == slug))))


async def delete_product(session: AsyncSession, product_id: uuid.UUID) -> None:
    """Delete a product; its variants go with it (ON DELETE CASCADE)."""
    await session.execute(delete(Product).where(Product.id == product_id))


async def delete_variant(session: AsyncSession, variant_id: uuid.UUID) -> None:
    """Delete one variant."""
    await session.execute(delete(ProductVariant).where(ProductVariant.id == variant_id))


async def variant_by_sku(session: AsyncSession, sku: str) -> ProductVariant | None:
    """The variant with this SKU."""
    return await session.scalar(select(ProductVariant).where(ProductVariant.sku == sku))


async def refresh_derived_columns(
    session: AsyncSession, product_id: uuid.UUID, document: Sequence[WeightedText]
) -> None:
    """Rewrite a product's search vector and cheapest price from its current rows."""
    parts: list[ColumnElement[Any]] = []
    for field_text in document:
        english = func.to_tsvector(_ENGLISH, field_text.text.english)
        chinese = func.to_tsvector(_SIMPLE, field_text.text.chinese)
        weight: ColumnElement[Any] = literal_column(_WEIGHTS[field_text.weight])
        parts.append(func.setweight(english, weight))
        parts.append(func.setweight(chinese, weight))
    vector: ColumnElement[Any] = parts[0]
    for part in parts[1:]:
        vector = vector.op("||")(part)
    cheapest = (
        select(func.min(ProductVariant.price_amount))
        .where(ProductVariant.product_id == product_id)
        .scalar_subquery()
    )
    await session.execute(
        update(Product)
        .where(Product.id == product_id)
        .values(search_vector=vector, price_min_amount=cheapest, updated_at=func.now())
        .execution_options(synchronize_session=False)
    )


def _search_query(search: SearchText) -> ColumnElement[Any]:
    english = func.websearch_to_tsquery(_ENGLISH, search.english)
    chinese = func.plainto_tsquery(_SIMPLE, search.chinese)
    return english.op("&&")(chinese)


def _filtered(stmt: Select[Any], where: ProductFilter) -> Select[Any]:
    stmt = stmt.where(Product.status == where.status)
    if where.search is not None:
        stmt = stmt.where(Product.search_vector.op("@@")(_search_query(where.search)))
    if where.category_slug is not None:
        tree = (
            select(Category.id)
            .where(Category.slug == where.category_slug)
            .cte("subtree", recursive=True)
        )
        tree = tree.union_all(select(Category.id).join(tree, Category.parent_id == tree.c.id))
        stmt = stmt.where(Product.category_id.in_(select(tree.c.id)))
    variant_conditions: list[ColumnElement[bool]] = []
    if where.min_price is not None:
        variant_conditions.append(ProductVariant.price_amount >= where.min_price)
    if where.max_price is not None:
        variant_conditions.append(ProductVariant.price_amount <= where.max_price)
    for name, candidates in where.attributes.items():
        variant_conditions.append(
            or_(*(ProductVariant.attributes.contains({name: value}) for value in candidates))
        )
    if variant_conditions:
        stmt = stmt.where(
            exists().where(ProductVariant.product_id == Product.id, *variant_conditions)
        )
    return stmt


async def list_products(
    session: AsyncSession, where: ProductFilter, page: PageRequest
) -> list[tuple[Product, tuple[Any, uuid.UUID]]]:
    """One page (plus one row, to tell whether more follow) with each row's sort key."""
    key: Any
    descending = True
    if page.sort == "relevance" and where.search is not None:
        key = func.ts_rank_cd(Product.search_vector, _search_query(where.search)).cast(Double)
    elif page.sort in ("price_asc", "price_desc"):
        key = Product.price_min_amount
        descending = page.sort == "price_desc"
    elif page.sort == "name":
        key, descending = Product.name, False
    else:
        key = Product.created_at
    stmt = _filtered(select(Product, key.label("sort_key")), where)
    if page.sort in ("price_asc", "price_desc"):
        stmt = stmt.where(Product.price_min_amount.is_not(None))
    if page.after is not None:
        bound = tuple_(literal(page.after[0], type_=key.type), literal(page.after[1]))
        position = tuple_(key, Product.id)
        stmt = stmt.where(position < bound if descending else position > bound)
    order = (key.desc(), Product.id.desc()) if descending else (key.asc(), Product.id.asc())
    stmt = stmt.order_by(*order).limit(page.limit + 1).options(selectinload(Product.variants))
    rows = (await session.execute(stmt)).all()
    return [(row[0], (row[1], row[0].id)) for row in rows]
