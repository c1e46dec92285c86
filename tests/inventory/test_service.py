"""Reservations: all or nothing, never oversold, and each move safe to repeat."""

from __future__ import annotations

import uuid

import pytest
from redis.asyncio import Redis
from sqlalchemy import select, text

from agora.core.db import Database
from agora.core.errors import Conflict
from agora.core.outbox import OutboxEvent
from agora.inventory import service
from agora.inventory.models import MovementKind, StockMovement
from tests.factories import create_variant, stock_of


class Rollback(Exception):
    """Aborts a unit of work."""


def _counts(stock: service.VariantStock) -> tuple[int, int, int]:
    level = stock.levels[0]
    return level.quantity, level.reserved, level.allocated


async def test_reserve_allocate_ship_moves_units_through_the_counts(
    database: Database, redis: Redis
) -> None:
    variant = await create_variant(database, stock=10)
    order = uuid.uuid4()

    async with database.unit_of_work() as session:
        await service.reserve(session, order, {variant: 3}, redis=redis)
    assert _counts(await stock_of(database, variant)) == (10, 3, 0)
    async with database.unit_of_work() as session:
        assert await service.allocate(session, order) == 3
        assert await service.allocate(session, order) == 0
    assert _counts(await stock_of(database, variant)) == (10, 0, 3)
    async with database.unit_of_work() as session:
        assert await service.ship(session, order) == 3
        assert await service.release(session, order, redis=redis) == 0
    assert _counts(await stock_of(database, variant)) == (7, 0, 0)

    async with database.unit_of_work() as session:
        kinds = await session.scalars(
            select(StockMovement.kind)
            .where(StockMovement.variant_id == variant)
            .order_by(StockMovement.id)
        )
        assert list(kinds) == [
            MovementKind.RESERVATION,
            MovementKind.ALLOCATION,
            MovementKind.SHIPMENT,
        ]


async def test_release_frees_held_and_allocated_units_once(
    database: Database, redis: Redis
) -> None:
    variant = await create_variant(database, stock=5)
    held, paid = uuid.uuid4(), uuid.uuid4()
    async with database.unit_of_work() as session:
        await service.reserve(session, held, {variant: 2}, redis=redis)
        await service.reserve(session, paid, {variant: 3}, redis=redis)
        await service.allocate(session, paid)
    assert (await stock_of(database, variant)).available == 0

    async with database.unit_of_work() as session:
        assert await service.release(session, held, redis=redis) == 2
        assert await service.release(session, paid, redis=redis) == 3
        assert await service.release(session, paid, redis=redis) == 0
    assert _counts(await stock_of(database, variant)) == (5, 0, 0)


async def test_a_multi_line_reservation_is_all_or_nothing(database: Database, redis: Redis) -> None:
    plenty = await create_variant(database, stock=10)
    scarce = await create_variant(database, stock=1)

    with pytest.raises(Conflict) as refused:
        async with database.unit_of_work() as session:
            await service.reserve(session, uuid.uuid4(), {plenty: 4, scarce: 2}, redis=redis)

    assert refused.value.instance_code == "out_of_stock"
    assert refused.value.extensions["variant_id"] == str(scarce)
    assert (await stock_of(database, plenty)).available == 10


async def test_reservation_takes_the_first_warehouse_with_enough_units(
    database: Database, redis: Redis
) -> None:
    variant = await create_variant(database, stock=1)
    async with database.unit_of_work() as session:
        second = await service.create_warehouse(session, "second", "Second")
        await service.set_stock(session, variant, 5, second.id, redis=redis)

    async with database.unit_of_work() as session:
        await service.reserve(session, uuid.uuid4(), {variant: 3}, redis=redis)
        await service.reserve(session, uuid.uuid4(), {variant: 1}, redis=redis)
    stock = await stock_of(database, variant)

    assert stock.available == 2
    by_warehouse = {level.warehouse_id: level.reserved for level in stock.levels}
    [default] = [warehouse for warehouse in by_warehouse if warehouse != second.id]
    # three units fit only in the second; one unit goes to whichever comes first in key order
    assert by_warehouse[second.id] == (3 if default < second.id else 4)
    assert sum(by_warehouse.values()) == 4


async def test_quantity_cannot_go_below_committed_units(database: Database, redis: Redis) -> None:
    variant = await create_variant(database, stock=5)
    async with database.unit_of_work() as session:
        await service.reserve(session, uuid.uuid4(), {variant: 4}, redis=redis)

    with pytest.raises(Conflict) as refused:
        async with database.unit_of_work() as session:
            await service.set_stock(session, variant, 3, redis=redis)
    assert refused.value.instance_code == "below_committed_stock"

    async with database.unit_of_work() as session:
        await service.set_stock(session, variant, 4, redis=redis)
    assert _counts(await stock_of(database, variant)) == (4, 4, 0)


async def test_check_constraint_refuses_overselling_whatever_the_code(database: Database) -> None:
    variant = await create_variant(database, stock=2)
    with pytest.raises(Exception, match="committed_within_quantity"):
        async with database.unit_of_work() as session:
            await session.execute(
                text("UPDATE stock_levels SET reserved = 3 WHERE variant_id = :v"),
                {"v": variant},
            )


async def test_availability_events_fire_when_stock_runs_out_and_returns(
    database: Database, redis: Redis
) -> None:
    variant = await create_variant(database)
    order = uuid.uuid4()
    async with database.unit_of_work() as session:
        await service.set_stock(session, variant, 1, redis=redis)
    async with database.unit_of_work() as session:
        await service.reserve(session, order, {variant: 1}, redis=redis)
    async with database.unit_of_work() as session:
        await service.release(session, order, redis=redis)

    async with database.unit_of_work() as session:
        events = await session.scalars(
            select(OutboxEvent.payload)
            .where(OutboxEvent.topic == service.AVAILABILITY_TOPIC)
            .order_by(OutboxEvent.id)
        )
        assert [event["in_stock"] for event in events] == [True, False, True]


async def test_in_stock_lookup(database: Database) -> None:
    stocked = await create_variant(database, stock=1)
    empty = await create_variant(database, stock=0)
    unknown = await create_variant(database)
    async with database.unit_of_work() as session:
        found = await service.in_stock_variant_ids(session, [stocked, empty, unknown])
    assert found == {stocked}


async def test_demo_stocking_fills_only_variants_without_stock(
    database: Database, redis: Redis
) -> None:
    stocked = await create_variant(database, stock=3)
    unstocked = await create_variant(database)

    async with database.unit_of_work() as session:
        assert await service.stock_unstocked_variants(session, 100, redis=redis) == 1
    async with database.unit_of_work() as session:
        assert await service.stock_unstocked_variants(session, 100, redis=redis) == 0

    assert (await stock_of(database, stocked)).available == 3
    assert (await stock_of(database, unstocked)).available == 100


async def test_demo_stocking_stocks_more_variants_than_one_statement_may_bind(
    database: Database, redis: Redis
) -> None:
    template = await create_variant(database)
    many = 11_000  # three parameters a stock level: 33,000, past PostgreSQL's 32,767
    async with database.unit_of_work() as session:
        await session.execute(
            text(
                "INSERT INTO product_variants (id, product_id, sku, price_amount, currency,"
                " attributes, weight_grams, created_at, updated_at)"
                " SELECT gen_random_uuid(), product_id, sku || '-' || n, price_amount, currency,"
                " attributes, weight_grams, created_at, updated_at"
                " FROM product_variants, generate_series(2, :many) AS n WHERE id = :template"
            ),
            {"many": many, "template": template},
        )
    async with database.unit_of_work() as session:
        assert await service.stock_unstocked_variants(session, 5, redis=redis) == many
