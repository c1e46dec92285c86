"""The database layer: unit of work, lazy="raise" relationships, migrations matching models."""

from __future__ import annotations

import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import selectinload

from agora.catalog.models import Category, Product
from agora.core.db import Database
from agora.models import metadata


class Abort(Exception):
    """Raised to abort a unit of work."""


def category(slug: str) -> Category:
    return Category(id=uuid.uuid4(), name=slug.title(), slug=slug)


async def count_categories(database: Database) -> int:
    async with database.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Category)) or 0)


async def test_unit_of_work_commits_at_the_end(database: Database) -> None:
    async with database.unit_of_work() as session:
        session.add(category("shoes"))
    assert await count_categories(database) == 1


async def test_unit_of_work_rolls_back_when_the_block_raises(database: Database) -> None:
    async def add_then_fail() -> None:
        async with database.unit_of_work() as session:
            session.add(category("hats"))
            await session.flush()
            raise Abort

    with pytest.raises(Abort):
        await add_then_fail()
    assert await count_categories(database) == 0


async def test_relationships_refuse_to_lazy_load(database: Database) -> None:
    async with database.unit_of_work() as session:
        session.add(Product(id=uuid.uuid4(), name="Lamp", slug="lamp"))
    async with database.sessionmaker() as session:
        product = (await session.scalars(select(Product))).one()
        with pytest.raises(InvalidRequestError, match="lazy='raise'"):
            _ = product.variants
        loaded = (
            await session.scalars(select(Product).options(selectinload(Product.variants)))
        ).one()
        assert loaded.variants == []


async def test_migrations_create_exactly_the_models(database: Database) -> None:
    def diff(connection: object) -> list[object]:
        context = MigrationContext.configure(connection)  # type: ignore[arg-type]
        return list(compare_metadata(context, metadata))

    async with database.engine.connect() as connection:
        differences = await connection.run_sync(diff)
    assert differences == []


async def test_a_connection_cut_while_idle_is_replaced_before_use(database: Database) -> None:
    """Without a ping on every checkout, a pooled connection that sat idle is pinged first, and
    one the server has closed meanwhile (a restart, an idle timeout) is swapped for a new one."""
    pooled = Database(database.engine.url.render_as_string(False), idle_ping_after=0)
    try:
        async with pooled.unit_of_work() as session:
            backend = await session.scalar(select(func.pg_backend_pid()))
        async with database.unit_of_work() as session:
            await session.execute(select(func.pg_terminate_backend(backend)))

        async with pooled.unit_of_work() as session:
            replaced = await session.scalar(select(func.pg_backend_pid()))
    finally:
        await pooled.dispose()
    assert replaced != backend
