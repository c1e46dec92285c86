"""Reservations: all or nothing, never oversold, and each move safe to repeat."""

from __future__ import annotations

import uuid

import pytest
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


async def test_reserve_allocate_ship_moves_units_through_the_counts(database: Database) -> None:
    variant = await create_variant(database, stock=10)
    order = uuid.uuid4()

    async with database.unit_of_work() as session:
        await service.reserve(session, order, {variant: 3})
    assert _counts(await stock_of(database, variant)) == (10, 3, 0)
    async with database.unit_of_work() as session:
        assert await service.allocate(session, order) == 3
        assert await service.allocate(session, order) == 0
    assert _counts(await stock_of(database, variant)) == (10, 0, 3)
    async with database.unit_of_work() as session:
        assert await service.ship(session, order) == 3
        assert await service.release(session, order) == 0
    assert _counts(await stock_of(database, variant)) == (7, 0, 0)

    async with database.unit_of_work() as session:
        kinds = await session.scalars(
            select(StockMovement.kind)
            .where(StockMovement.variant_id == variant)
            .order_by(StockMovement.id)
        )
        assert list(kinds) == [
            MovementKind.ADJUSTMENT,
            MovementKind.RESERVATION,
            MovementKind.ALLOCATION,
            MovementKind.SHIPMENT,
        ]


async def test_release_frees_held_and_allocated_units_once(database: Database) -> None:
    variant = await create_variant(database, stock=5)
    held, paid = uuid.uuid4(), uuid.uuid4()
    async with database.unit_of_work() as session:
        await service.reserve(session, held, {variant: 2})
        await service.reserve(session, paid, {variant: 3})
        await service.allocate(session, paid)
    assert (await stock_of(database, variant)).available == 0

    async with database.unit_of_work() as session:
        assert await service.release(session, held) == 2
        assert await service.release(session, paid) == 3
        assert await service.release(session, paid) == 0
    assert _counts(await stock_of(database, variant)) == (5, 0, 0)


async def test_a_multi_line_reservation_is_all_or_nothing(database: Database) -> None:
    plenty = await create_variant(database, stock=10)
    scarce = await create_variant(database, stock=1)

    with pytest.raises(Conflict) as refused:
        async with database.unit_of_work() as session:
            await service.reserve(session, uuid.uuid4(), {plenty: 4, scarce: 2})

    assert refused.value.instance_code == "out_of_stock"
    assert refused.value.extensions["variant_id"] == str(scarce)
    assert (await stock_of(database, plenty)).available == 10


async def test_reservation_takes_the_first_warehouse_with_enough_units(
    database: Database,
) -> None:
    variant = await create_variant(database, stock=1)
    async with database.unit_of_work() as session:
        second = await service.create_warehouse(session, "second", "Second")
        await service.set_stock(session, variant, 5, second.id)

    async with database.unit_of_work() as session:
        await service.reserve(session, uuid.uuid4(), {variant: 3})
        await service.reserve(session, uuid.uuid4(), {variant: 1})
    stock = await stock_of(database, variant)

    assert stock.available == 2
    by_warehouse = {level.warehouse_id: level.reserved for level in stock.levels}
    [default] = [warehouse for warehouse in by_warehouse if warehouse != second.id]
    # three units fit only in the second; one unit goes to whichever comes first in key order
    assert by_warehouse[second.id] == (3 if default < second.id else 4)
    assert sum(by_warehouse.values()) == 4


async def test_quantity_cannot_go_below_committed_units(database: Database) -> None:
    variant = await create_variant(database, stock=5)
    async with database.unit_of_work() as session:
        await service.reserve(session, uuid.uuid4(), {variant: 4})

    with pytest.raises(Conflict) as refused:
        async with database.unit_of_work() as session:
            await service.set_stock(session, variant, 3)
    assert refused.value.instance_code == "below_committed_stock"

    async with database.unit_of_work() as session:
        await service.set_stock(session, variant, 4)
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
    database: Database,
) -> None:
    variant = await create_variant(database, stock=1)
    order = uuid.uuid4()
    async with database.unit_of_work() as session:
        await service.reserve(session, order, {variant: 1})
    async with database.unit_of_work() as session:
        await service.release(session, order)

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
