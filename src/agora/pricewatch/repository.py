"""Every query on price watch's tables."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Row,
    String,
    Uuid,
    any_,
    bindparam,
    column,
    func,
    insert,
    literal_column,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from agora.catalog.models import ProductVariant
from agora.core.db import statement_batches
from agora.core.driver import DriverStatement
from agora.pricewatch.models import PriceChange, Site, Target


async def site(session: AsyncSession, site_id: uuid.UUID) -> Site | None:
    """A site by id."""
    return await session.get(Site, site_id)


async def sites_by_host(session: AsyncSession, hosts: Sequence[str]) -> dict[str, Site]:
    """The sites of these hosts, by host."""
    found = await session.scalars(select(Site).where(Site.host.in_(hosts)))
    return {row.host: row for row in found}


async def all_sites(session: AsyncSession) -> Sequence[Site]:
    """Every site."""
    return (await session.scalars(select(Site))).all()


async def insert_site(session: AsyncSession, values: dict[str, Any]) -> Site | None:
    """A new site, or None when its host is watched already."""
    site_id = await session.scalar(
        pg_insert(Site)
        .values(id=uuid.uuid4(), **values)
        .on_conflict_do_nothing(index_elements=[Site.host])
        .returning(Site.id)
    )
    return None if site_id is None else await session.get(Site, site_id)


async def insert_targets(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Watch these pages; a URL watched already keeps its row (its variant is set if given)."""
    for batch in statement_batches(rows, len(Target.__table__.columns)):
        statement = pg_insert(Target).values(batch)
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[Target.url],
                set_={"variant_id": statement.excluded.variant_id},
                where=statement.excluded.variant_id.is_not(None),
            )
        )


def _url_among(urls: Sequence[str]) -> ColumnElement[bool]:
    """``url = ANY($1)``: any number of URLs in one array parameter."""
    return Target.url == any_(bindparam("urls", list(urls), type_=ARRAY(String)))


async def targets_by_url(session: AsyncSession, urls: Sequence[str]) -> dict[str, Target]:
    """The targets of these URLs, by URL."""
    found = await session.scalars(select(Target).where(_url_among(urls)))
    return {row.url: row for row in found}


@dataclass(slots=True)
class WatchedPage:
    """What reading a fetched page needs of its target and its site's extraction rules (plain
    columns: no ORM identity map, which costs more than the rest of a crawler's batch; slotted,
    not frozen: a frozen dataclass costs five times as much to make, once a page)."""

    id: uuid.UUID
    url: str
    site_id: uuid.UUID
    variant_id: uuid.UUID | None
    price_amount: int | None
    currency: str | None
    in_stock: bool | None
    rules: dict[str, Any] | None


# Built once and sent straight to the driver (core/driver.py): a crawler runs it for every batch
# of pages, with the batch's URLs as its parameter.
_WATCHED_PAGES = DriverStatement(
    select(
        Target.id,
        Target.url,
        Target.site_id,
        Target.variant_id,
        Target.price_amount,
        Target.currency,
        Target.in_stock,
        # most sites have no rules: NULL, not a JSON document to decode once a page
        func.nullif(Site.rules, literal_column("'{}'::jsonb"), type_=JSONB),
    )
    .join(Site, Site.id == Target.site_id)
    .where(Target.url == any_(bindparam("urls", type_=ARRAY(String))))
)


async def watched_pages(session: AsyncSession, urls: Sequence[str]) -> dict[str, WatchedPage]:
    """The targets of these URLs with their sites' rules, by URL (one statement)."""
    rows = await _WATCHED_PAGES.fetch(session, urls=list(urls))
    return {row["url"]: WatchedPage(*row) for row in rows}


async def target(session: AsyncSession, target_id: uuid.UUID) -> Target | None:
    """A target by id."""
    return await session.get(Target, target_id)


async def all_target_urls(session: AsyncSession) -> Sequence[str]:
    """The URL of every target."""
    return (await session.scalars(select(Target.url))).all()


async def history(session: AsyncSession, target_id: uuid.UUID, limit: int) -> Sequence[PriceChange]:
    """A target's newest recorded changes, newest first."""
    query = (
        select(PriceChange)
        .where(PriceChange.target_id == target_id)
        .order_by(PriceChange.id.desc())
        .limit(limit)
    )
    return (await session.scalars(query)).all()


@dataclass(frozen=True)
class NewReading:
    """A target's reading as a page now states it."""

    target_id: uuid.UUID
    price_amount: int
    currency: str | None
    in_stock: bool | None


# One statement, built and compiled once (core/driver.py): the batch's readings arrive as four
# arrays, one row each once unnested, whatever their number. The VALUES list it replaced was
# compiled again for every batch (its shape changes with the batch's size), which cost more CPU
# than everything else a crawler did for a batch of changed pages.
_READING = (
    func.unnest(
        bindparam("ids", type_=ARRAY(Uuid)),
        bindparam("amounts", type_=ARRAY(BigInteger)),
        bindparam("currencies", type_=ARRAY(String)),
        bindparam("in_stock", type_=ARRAY(Boolean)),
    )
    .table_valued(
        column("id", Uuid),
        column("price_amount", BigInteger),
        column("currency", String),
        column("in_stock", Boolean),
    )
    .render_derived(name="reading")
)
_CHANGED = (
    update(Target)
    .where(
        Target.id == _READING.c.id,
        tuple_(Target.price_amount, Target.currency, Target.in_stock).is_distinct_from(
            tuple_(_READING.c.price_amount, _READING.c.currency, _READING.c.in_stock)
        ),
    )
    .values(
        price_amount=_READING.c.price_amount,
        currency=_READING.c.currency,
        in_stock=_READING.c.in_stock,
        changed_at=func.now(),
    )
    .returning(Target.id, Target.price_amount, Target.currency, Target.in_stock)
    .cte("changed")
)
_RECORD_CHANGES = DriverStatement(
    insert(PriceChange)
    .from_select(
        ["target_id", "price_amount", "currency", "in_stock"],
        select(_CHANGED.c.id, _CHANGED.c.price_amount, _CHANGED.c.currency, _CHANGED.c.in_stock),
    )
    .returning(PriceChange.target_id)
)


async def record_changes(session: AsyncSession, readings: Sequence[NewReading]) -> set[uuid.UUID]:
    """Set each target's reading unless it is that already, log each change; the ids changed.

    One statement: a guarded UPDATE whose changed rows the INSERT of the log reads back. It
    holds the rows it changes until commit, so two crawlers reading the same change record it
    once: the second finds the reading already set.
    """
    if not readings:
        return set()
    rows = await _RECORD_CHANGES.fetch(
        session,
        ids=[r.target_id for r in readings],
        amounts=[r.price_amount for r in readings],
        currencies=[r.currency for r in readings],
        in_stock=[r.in_stock for r in readings],
    )
    return {row["target_id"] for row in rows}


async def variant_prices(
    session: AsyncSession, variant_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[int, str]]:
    """Our price (amount, currency) of these variants."""
    rows = await session.execute(
        select(ProductVariant.id, ProductVariant.price_amount, ProductVariant.currency).where(
            ProductVariant.id.in_(variant_ids)
        )
    )
    return {row.id: (row.price_amount, row.currency) for row in rows}


async def undercuts(session: AsyncSession, limit: int) -> Sequence[Row[Target, int, str]]:
    """Targets priced below their variant (same currency), the widest gap first."""
    gap = ProductVariant.price_amount - Target.price_amount
    query = (
        select(Target, ProductVariant.price_amount, ProductVariant.currency)
        .join(ProductVariant, ProductVariant.id == Target.variant_id)
        .where(Target.currency == ProductVariant.currency, gap > 0)
        .order_by(gap.desc(), Target.id)
        .limit(limit)
    )
    return (await session.execute(query)).all()


@dataclass(frozen=True)
class RecentChange:
    """A recorded change, the page it was read on and the price it replaced."""

    observed_at: dt.datetime
    url: str
    price_amount: int | None
    previous_amount: int | None
    currency: str | None
    in_stock: bool | None


async def recent_changes(session: AsyncSession, limit: int) -> list[RecentChange]:
    """The newest changes, newest first: the primary key's order, then one lookup of the
    previous change per row on the (target, id) index."""
    previous = aliased(PriceChange)
    before = (
        select(previous.price_amount)
        .where(previous.target_id == PriceChange.target_id, previous.id < PriceChange.id)
        .order_by(previous.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(
            PriceChange.observed_at,
            Target.url,
            PriceChange.price_amount,
            before,
            PriceChange.currency,
            PriceChange.in_stock,
        )
        .join(Target, Target.id == PriceChange.target_id)
        .order_by(PriceChange.id.desc())
        .limit(limit)
    )
    return [RecentChange(*row) for row in rows]
